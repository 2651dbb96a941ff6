using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using ClusterSession.Caching;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <summary>
/// A session store on PostgreSQL: one row per session, keyed by its <see cref="SessionHandle"/> (the store keeps no
/// session id), one row per attribute (so a save writes only what changed), expiry computed from the
/// <see cref="TimeProvider"/> and enforced in every query, and a background cleanup that deletes expired sessions in
/// bounded batches. A load is one round trip (touch included), a save is one round trip. On a database of the previous
/// release it keeps writing that release's layout until <see cref="UpgradeAsync"/>. See docs/postgres-data-model.md.
/// </summary>
/// <remarks>
/// Each operation runs under one deadline, <see cref="PostgresSessionStoreOptions.CommandTimeout"/> (a linked
/// <see cref="CancellationTokenSource"/>, so the caller's token can end it sooner; Npgsql cancels the running
/// statement on the server). The store logs nothing per failed operation: it throws, and the caller logs once.
/// This file holds the session operations; running statements, the schema and the cleanup have files of their own.
/// </remarks>
public sealed partial class PostgresSessionStore : ISessionStore, IStoreTelemetry, IAsyncDisposable, IDisposable
{
    private const int DefaultMaxAutoPrepare = 32;

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly PostgresSql _sql;
    private readonly PostgresLayoutSql _layoutSql;
    private readonly SessionStoreOperations _operations;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SessionLimits _limits;
    private readonly double _touchFraction;
    private readonly TimeSpan _timeout;
    private readonly int _commandTimeoutSeconds;
    private readonly bool _unlogged;
    private readonly ExpiredSessionCleanup _cleanup;
    private PostgresCapSql? _capSql;

    /// <summary>Cancelled by the disposal: stops the background work (cleanup, layout refresh, listeners).</summary>
    private readonly CancellationTokenSource _disposing = new();
    private int _disposed;

    // Schema creation (PostgresSessionStore.Schema.cs).
    private readonly Lock _schemaLock = new();
    private Task? _schemaTask;

    // The layout and this node's heartbeat (PostgresSessionStore.Layout.cs).
    private readonly Lock _layoutLock = new();
    private readonly string _nodeName = "node:" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private readonly TimeSpan _layoutRefresh;
    private volatile StoreLayout _layout = StoreLayout.Previous;
    private StoreLayout _layoutBefore = StoreLayout.Previous;
    private long _layoutSince;
    private Task<bool>? _layoutTask;
    private ITimer? _layoutTimer;
    private Task _layoutRefreshTask = Task.CompletedTask;
    private int _layoutRefreshing;
    private bool _registered;
    private volatile bool _layoutKnown;

    // What the instrumentation reports (IStoreTelemetry): the first host of the connection string.
    private string? _serverAddress;
    private int? _serverPort;

    /// <summary>Creates the store. It opens no connection until its first command.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="timeProvider">The cleanup timer's clock. Default <see cref="TimeProvider.System"/>: expiry is decided, and accesses
    /// and new sessions dated, on the database's clock (<c>now()</c>), one clock for every node. Any other provider replaces that
    /// clock (for tests that move time, such as FakeTimeProvider); every node must then use the same one.</param>
    /// <param name="logger">The logger; none when null.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    public PostgresSessionStore(PostgresSessionStoreOptions options, TimeProvider? timeProvider = null, ILogger<PostgresSessionStore>? logger = null)
        : this(options, timeProvider, logger, meterFactory: null)
    {
    }

    /// <summary>
    /// Creates a store for DI registration, with the application's clock, logger and meter factory (a store built with
    /// <c>new</c> owns its meter instead).
    /// </summary>
    /// <param name="provider">The application's services.</param>
    /// <param name="options">The options.</param>
    internal static PostgresSessionStore Create(IServiceProvider provider, PostgresSessionStoreOptions options)
        => new(
            options,
            (TimeProvider?)provider.GetService(typeof(TimeProvider)),
            (ILogger<PostgresSessionStore>?)provider.GetService(typeof(ILogger<PostgresSessionStore>)),
            (IMeterFactory?)provider.GetService(typeof(IMeterFactory)));

    private PostgresSessionStore(PostgresSessionStoreOptions options, TimeProvider? timeProvider, ILogger<PostgresSessionStore>? logger, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();

        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _limits = options.Limits;
        _touchFraction = options.TouchIntervalFraction;
        _timeout = options.CommandTimeout;
        _commandTimeoutSeconds = (int)Math.Ceiling(options.CommandTimeout.TotalSeconds);
        _unlogged = options.Unlogged;
        var nearCache = options.NearCache.Enabled;
        _sql = new PostgresSql(options.Schema, options.TablePrefix, options.Unlogged, nearCache ? PostgresNearCacheChannel.For(options.Schema, options.TablePrefix) : null);
        _layoutSql = new PostgresLayoutSql(_sql.StoreTable, _sql.SessionsTable);
        _layoutRefresh = options.LayoutRefreshInterval;

        if (options.DataSource is { } dataSource)
        {
            _dataSource = dataSource;
        }
        else
        {
            var builder = new NpgsqlDataSourceBuilder(options.ConnectionString);
            if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
            {
                // The store runs a dozen fixed statements: preparing them saves parsing and planning on every call.
                builder.ConnectionStringBuilder.MaxAutoPrepare = DefaultMaxAutoPrepare;
            }

            // Npgsql does not cancel a connection attempt mid-handshake; its own Timeout ends it, so no longer than the deadline.
            builder.ConnectionStringBuilder.Timeout = Math.Min(builder.ConnectionStringBuilder.Timeout, _commandTimeoutSeconds);

            _dataSource = builder.Build();
            _ownsDataSource = true;
        }

        var connection = new NpgsqlConnectionStringBuilder(_dataSource.ConnectionString);
        var server = string.Create(CultureInfo.InvariantCulture, $"{connection.Host}:{connection.Port}");
        _operations = new PostgresFailures(server, _sql.SessionsTable, _sql.AttributesTable, _timeout).Operations();
        SetServer(connection.Host, connection.Port);

        if (options.CreateSchemaOnStartup)
        {
            _schemaTask = CreateSchemaAsync(CancellationToken.None);
        }

        if (nearCache)
        {
            _layer = CreateNearCache(options, meterFactory);
            StartListener();
        }

        _cleanup = new ExpiredSessionCleanup(this, options);
    }

    /// <summary>The quoted name of the sessions table, e.g. <c>"public"."clustersession_sessions"</c>.</summary>
    public string SessionsTableName => _sql.SessionsTable;

    /// <summary>The quoted name of the attributes table.</summary>
    public string AttributesTableName => _sql.AttributesTable;

    // What the instrumentation reports about this store: db.system.name=postgresql and the first host of the connection
    // string (a multi-host connection string lists several; the span names the first).
    string IStoreTelemetry.DbSystemName => "postgresql";

    string? IStoreTelemetry.ServerAddress => _serverAddress;

    int? IStoreTelemetry.ServerPort => _serverPort;

    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCreate(session, _limits);
        return RunAsync("create", (Store: this, Session: session), static (s, token) => s.Store.CreateCoreAsync(s.Session, s.Store.KeysOf(s.Session.Id!), token), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>With the near cache on, a session this node holds is returned with no round trip (see docs/near-cache.md).</remarks>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return _layer is { } layer
            ? LoadThroughNearCache(layer, id, cancellationToken)
            : LoadSnapshotAsync(id, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// <see cref="SessionLoadOptions.NoTouch"/> runs the same statement with a null touch fraction, so its conditional
    /// UPDATE matches no row. With the near cache on, such a load goes to the store and is not cached (a copy served
    /// from memory would start a background touch).
    /// </remarks>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
    {
        if ((options & SessionLoadOptions.NoTouch) == 0)
        {
            return LoadAsync(id, cancellationToken);
        }

        SessionId.ThrowIfMalformed(id);
        var loading = RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, touch: false, token), cancellationToken);
        return loading.IsCompletedSuccessfully ? new(loading.Result.Snapshot) : SnapshotOf(loading);

        static async ValueTask<SessionSnapshot?> SnapshotOf(ValueTask<LoadedSession> loading) => (await loading.ConfigureAwait(false)).Snapshot;
    }

    /// <inheritdoc />
    /// <exception cref="SessionLimitExceededException">A name or value is over the limits, or the session would hold too many attributes.</exception>
    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckSave(changes, _limits);
        return _layer is { } layer ? layer.SaveAsync(changes, cancellationToken) : ResultOf(SaveDirectAsync(changes, cancellationToken));

        static async ValueTask<SessionSaveResult> ResultOf(ValueTask<SessionSaveOutcome> saving) => (await saving.ConfigureAwait(false)).Result;
    }

    private ValueTask<SessionSaveOutcome> SaveDirectAsync(SessionChanges changes, CancellationToken cancellationToken)
    {
        return RunAsync(
            "save",
            (Store: this, Changes: changes),
            static (s, token) => s.Store.OwnWriteAsync(s.Store.KeysOf(s.Changes.Id), s, static (s, keys, write, token) => s.Store.SaveCoreAsync(s.Changes, keys, write, token), token),
            cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return _layer is { } layer ? layer.DeleteAsync(id, cancellationToken) : DeleteDirectAsync(id, cancellationToken);
    }

    private ValueTask<bool> DeleteDirectAsync(string id, CancellationToken cancellationToken)
        => RunAsync(
            "delete",
            (Store: this, Id: id),
            static (s, token) => s.Store.OwnWriteAsync(s.Store.KeysOf(s.Id), s, static (s, keys, write, token) => s.Store.DeleteCoreAsync(keys, write, token), token),
            cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        return !SessionStoreContract.CheckChangeId(oldId, newId)
            ? new(false)
            : _layer is { } layer ? layer.ChangeIdAsync(oldId, newId, cancellationToken) : ChangeIdDirectAsync(oldId, newId, cancellationToken);
    }

    private ValueTask<bool> ChangeIdDirectAsync(string oldId, string newId, CancellationToken cancellationToken)
        => RunAsync(
            "id change",
            (Store: this, OldId: oldId, NewId: newId),
            static (s, token) => s.Store.OwnWriteAsync(s.Store.KeysOf(s.OldId), s, static (s, keys, write, token) => s.Store.ChangeIdCoreAsync(keys, s.Store.KeysOf(s.NewId), write, token), token),
            cancellationToken);

    /// <inheritdoc />
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id,
        string name,
        ReadOnlyMemory<byte>? expected,
        byte[]? replacement,
        CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCompareAndSet(id, name, replacement, _limits);
        return _layer is { } layer
            ? layer.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken)
            : CompareAndSetDirectAsync(id, name, expected, replacement, cancellationToken);
    }

    private ValueTask<AttributeCasResult> CompareAndSetDirectAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken)
        => RunAsync(
            "compare-and-set",
            (Store: this, Id: id, Name: name, Expected: expected?.ToArray(), Replacement: replacement),
            static (s, token) => s.Store.OwnWriteAsync(s.Store.KeysOf(s.Id), s, static (s, keys, write, token) => s.Store.CompareAndSetCoreAsync(keys, s.Name, s.Expected, s.Replacement, write, token), token),
            cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        return RunAsync("find by principal", (Store: this, Principal: principal), static (s, token) => s.Store.FindByPrincipalCoreAsync(s.Principal, token), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One statement, on the principal index: it deletes the row whose key is the handle, or whose id (a row of the previous layout) has that handle.</remarks>
    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(handle);
        if (!SessionHandle.IsWellFormed(handle))
        {
            return new(false);
        }

        // With the near cache on, the revocation returns once every live node applied it; its key is the handle from
        // layout 3 on (before, the digest of an id this node does not know: the end is then not waited for).
        return _layer is { } layer && _layoutKnown && _layout == StoreLayout.Current
            ? layer.EndAsync(
                handle,
                async token =>
                {
                    var live = await DeleteByHandleDirectAsync(principal, handle, token).ConfigureAwait(false);
                    return (live, live);
                },
                cancellationToken)
            : DeleteByHandleDirectAsync(principal, handle, cancellationToken);
    }

    private ValueTask<bool> DeleteByHandleDirectAsync(string principal, string handle, CancellationToken cancellationToken)
        => RunAsync(
            "delete by handle",
            (Store: this, Principal: principal, Handle: handle),
            static (s, token) => s.Store.DeleteByHandleCoreAsync(s.Principal, s.Handle, token),
            cancellationToken);

    /// <inheritdoc />
    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
        => RunAsync("count", this, static (store, token) => store.CountCoreAsync(token), cancellationToken);

    /// <summary>
    /// Stops the background cleanup (waiting for a running one) and the near cache's listener (closing its connection),
    /// and closes the data source if the store created it.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopLayoutAsync().ConfigureAwait(false);
        await _cleanup.StopTimerAsync().ConfigureAwait(false);
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _cleanup.WaitAsync().ConfigureAwait(false);
        await StopNearCacheAsync().ConfigureAwait(false);
        _disposing.Dispose();
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc cref="DisposeAsync" />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void SetServer(string? host, int port)
    {
        var first = host?.Split(',', 2)[0].Trim();
        if (string.IsNullOrEmpty(first))
        {
            return;
        }

        // A host may carry its own port ("db1:5433,db2").
        var colon = first.LastIndexOf(':');
        if (colon > 0 && first.IndexOf(']', StringComparison.Ordinal) < colon
            && int.TryParse(first.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var own))
        {
            _serverAddress = first[..colon];
            _serverPort = own;
            return;
        }

        _serverAddress = first;
        _serverPort = port;
    }

    private async Task<bool> CreateCoreAsync(SessionSnapshot session, SessionKeys keys, CancellationToken token)
    {
        var (names, values) = Split(session.Attributes);
        var batch = CreateBatch(
            Command(_sql.DeleteExpired, TextArray(keys.Addresses), Clock(_timeProvider)),
            Command(
                _sql.Create,
                Text(keys.Key),
                Clock(_timeProvider),
                Interval(session.IdleTimeout),
                Interval(session.AbsoluteExpiresAt - session.CreatedAt),
                NullableText(session.Principal),
                Long(session.Version),
                TextArray(names),
                ByteaArray(values),
                TextArray(keys.Others),
                Bool(keys.Mark)));
        await using (batch.ConfigureAwait(false))
        {
            var created = await batch.ExecuteScalarAsync(token).ConfigureAwait(false);
            return Convert.ToInt64(created, CultureInfo.InvariantCulture) == 1;
        }
    }

    private ValueTask<SessionSnapshot?> LoadSnapshotAsync(string id, CancellationToken cancellationToken)
    {
        var loading = RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, token), cancellationToken);
        return loading.IsCompletedSuccessfully ? new(loading.Result.Snapshot) : SnapshotOf(loading);

        static async ValueTask<SessionSnapshot?> SnapshotOf(ValueTask<LoadedSession> loading) => (await loading.ConfigureAwait(false)).Snapshot;
    }

    private Task<LoadedSession> LoadCoreAsync(string id, CancellationToken token) => LoadCoreAsync(id, touch: true, token);

    private async Task<LoadedSession> LoadCoreAsync(string id, bool touch, CancellationToken token)
    {
        // No touch: a null fraction makes the statement's conditional UPDATE match nothing (idle_timeout * NULL is NULL).
        var fraction = touch ? Double(_touchFraction) : new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Double, Value = DBNull.Value };
        var command = CreateCommand(_sql.Load, TextArray(KeysOf(id).Addresses), Clock(_timeProvider), fraction);
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await PostgresRows.ReadSessionAsync(reader, id, token).ConfigureAwait(false);
            }
        }
    }

    private async Task<SessionSaveOutcome> SaveCoreAsync(SessionChanges changes, SessionKeys keys, OwnWrite? write, CancellationToken token)
    {
        var (names, values) = Split(changes.Set);
        var removed = changes.Removed.Count == 0 ? NoNames : [.. changes.Removed];
        long? count;
        long? version;
        var batch = CreateBatch(
            write,
            Command(_sql.LockLive, TextArray(keys.Addresses), Clock(_timeProvider)),
            Command(
                _sql.Save,
                TextArray(keys.Addresses),
                Clock(_timeProvider),
                TextArray(names),
                ByteaArray(values),
                TextArray(removed),
                Int(_limits.MaxAttributes),
                NullableInterval(changes.IdleTimeout),
                Bool(changes.PrincipalChanged),
                NullableText(changes.Principal)));
        await using (batch.ConfigureAwait(false))
        {
            var reader = await batch.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(token).ConfigureAwait(false);
                await reader.ReadAsync(token).ConfigureAwait(false);
                count = reader.IsDBNull(0) ? null : reader.GetInt64(0);
                version = reader.IsDBNull(1) ? null : reader.GetInt64(1);
            }
        }

        if (count is null)
        {
            return new(SessionSaveResult.Gone, 0);
        }

        // Not written while live: the statement found the change over the attribute limit.
        if (version is not { } v)
        {
            throw _limits.TooManyAttributes();
        }

        write?.Expect(v);
        return new(SessionSaveResult.Saved, v);
    }

    private async Task<bool> DeleteCoreAsync(SessionKeys keys, OwnWrite? write, CancellationToken token)
    {
        var command = CreateCommand(write, _sql.Delete, TextArray(keys.Addresses), Clock(_timeProvider));
        await using (command.ConfigureAwait(false))
        {
            // One row when a row was deleted (live or not yet swept): the statement announced it.
            var live = await command.ExecuteScalarAsync(token).ConfigureAwait(false);
            if (live is bool)
            {
                write?.Expect(NearCachedSessionStore.Gone);
            }

            return live is true;
        }
    }

    private async Task<bool> ChangeIdCoreAsync(SessionKeys old, SessionKeys renamed, OwnWrite? write, CancellationToken token)
    {
        var batch = CreateBatch(
            write,
            Command(_sql.DeleteExpired, TextArray(renamed.Addresses), Clock(_timeProvider)),
            Command(_sql.ChangeId, TextArray(old.Addresses), Text(renamed.Key), Clock(_timeProvider)));
        await using (batch.ConfigureAwait(false))
        {
            var moved = false;
            try
            {
                // The second statement returns one row when the session moved; the first (a DELETE) returns no result set.
                var reader = await batch.ExecuteReaderAsync(token).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    do
                    {
                        moved |= reader.FieldCount > 0 && await reader.ReadAsync(token).ConfigureAwait(false);
                    }
                    while (await reader.NextResultAsync(token).ConfigureAwait(false));
                }
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                return false;
            }

            if (moved)
            {
                write?.Expect(NearCachedSessionStore.Gone);
            }

            return moved;
        }
    }

    private async Task<AttributeCasResult> CompareAndSetCoreAsync(SessionKeys keys, string name, byte[]? expected, byte[]? replacement, OwnWrite? write, CancellationToken token)
    {
        var batch = CreateBatch(
            write,
            Command(_sql.LockLive, TextArray(keys.Addresses), Clock(_timeProvider)),
            Command(_sql.CompareAndSet, TextArray(keys.Addresses), Clock(_timeProvider), Text(name), NullableBytea(expected), NullableBytea(replacement), Int(_limits.MaxAttributes)));
        await using (batch.ConfigureAwait(false))
        {
            var reader = await batch.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(token).ConfigureAwait(false);
                await reader.ReadAsync(token).ConfigureAwait(false);
                if (!reader.GetBoolean(0))
                {
                    return AttributeCasResult.Gone;
                }

                if (reader.GetBoolean(3))
                {
                    throw _limits.TooManyAttributes();
                }

                if (!reader.GetBoolean(1))
                {
                    return AttributeCasResult.Mismatch(reader.IsDBNull(2) ? null : reader.GetFieldValue<byte[]>(2));
                }

                write?.Expect(reader.GetInt64(4));
                return AttributeCasResult.Succeeded;
            }
        }
    }

    private async Task<IReadOnlyList<SessionSnapshot>> FindByPrincipalCoreAsync(string principal, CancellationToken token)
    {
        var command = CreateCommand(_sql.FindByPrincipal, Text(principal), Clock(_timeProvider));
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await PostgresRows.ReadSessionsAsync(reader, token).ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> DeleteByHandleCoreAsync(string principal, string handle, CancellationToken token)
    {
        var live = false;
        var keys = new List<string>();
        var command = CreateCommand(_sql.DeleteByHandle, Text(principal), Text(handle), Clock(_timeProvider));
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    live |= reader.GetBoolean(0);
                    keys.Add(reader.GetString(1));
                }
            }
        }

        DropCopies(keys);
        return live;
    }

    private async Task<long> CountCoreAsync(CancellationToken token)
    {
        var command = CreateCommand(_sql.Count, Clock(_timeProvider));
        await using (command.ConfigureAwait(false))
        {
            return Convert.ToInt64(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }
    }
}
