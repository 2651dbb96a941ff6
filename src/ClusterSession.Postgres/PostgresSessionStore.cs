using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace ClusterSession.Postgres;

/// <summary>
/// A session store on PostgreSQL: one row per session, one row per attribute (so a save writes only
/// what changed), expiry computed from the <see cref="TimeProvider"/> and enforced in every query,
/// and a background cleanup that deletes expired sessions in bounded batches. A load is one
/// round trip (touch included), a save is one round trip. See docs/postgres-data-model.md.
/// </summary>
public sealed partial class PostgresSessionStore : ISessionStore, IAsyncDisposable, IDisposable
{
    private const int DefaultMaxAutoPrepare = 32;
    private static readonly string[] NoNames = [];
    private static readonly byte[][] NoValues = [];

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly PostgresSql _sql;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SessionLimits _limits;
    private readonly double _touchFraction;
    private readonly int _cleanupBatchSize;
    private readonly int _commandTimeoutSeconds;
    private readonly bool _unlogged;
    private readonly string _serverDescription;
    private readonly ITimer? _cleanupTimer;
    private readonly CancellationTokenSource _disposing = new();
    private readonly Lock _schemaLock = new();
    private Task? _schemaTask;
    private Task _cleanupTask = Task.CompletedTask;
    private int _cleanupRunning;
    private int _disposed;

    /// <summary>Creates the store. It opens no connection until its first command.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="timeProvider">The clock for expiry and the cleanup timer; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="logger">The logger; none when null.</param>
    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public PostgresSessionStore(PostgresSessionStoreOptions options, TimeProvider? timeProvider = null, ILogger<PostgresSessionStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = options.Validate();
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, failures), nameof(options));
        }

        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _limits = options.Limits;
        _touchFraction = options.TouchIntervalFraction;
        _cleanupBatchSize = options.CleanupBatchSize;
        _commandTimeoutSeconds = (int)Math.Ceiling(options.CommandTimeout.TotalSeconds);
        _unlogged = options.Unlogged;
        _sql = new PostgresSql(options.Schema, options.TablePrefix, options.Unlogged);

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

            _dataSource = builder.Build();
            _ownsDataSource = true;
        }

        var connection = new NpgsqlConnectionStringBuilder(_dataSource.ConnectionString);
        _serverDescription = string.Create(CultureInfo.InvariantCulture, $"{connection.Host}:{connection.Port}");

        if (options.CreateSchemaOnStartup)
        {
            _schemaTask = CreateSchemaAsync(CancellationToken.None);
        }

        if (options.CleanupInterval != Timeout.InfiniteTimeSpan)
        {
            _cleanupTimer = _timeProvider.CreateTimer(
                static state => ((PostgresSessionStore)state!).OnCleanupTimer(), this, options.CleanupInterval, options.CleanupInterval);
        }
    }

    /// <summary>The quoted name of the sessions table, e.g. <c>"public"."clustersession_sessions"</c>.</summary>
    public string SessionsTableName => _sql.SessionsTable;

    /// <summary>The quoted name of the attributes table.</summary>
    public string AttributesTableName => _sql.AttributesTable;

    /// <summary>
    /// Creates the schema, tables and indexes that are missing (the embedded schema.sql, with the
    /// configured schema, prefix and logging mode). Never alters or drops anything that exists;
    /// safe to run from several instances at once.
    /// </summary>
    public async Task CreateSchemaAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (transaction.ConfigureAwait(false))
                {
                    // CREATE ... IF NOT EXISTS is not safe against itself running concurrently; the lock is.
                    var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('ClusterSession.Postgres.schema'))", connection, transaction);
                    await using (lockCommand.ConfigureAwait(false))
                    {
                        lockCommand.CommandTimeout = _commandTimeoutSeconds;
                        await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    var ddl = new NpgsqlCommand(_sql.CreateSchema, connection, transaction);
                    await using (ddl.ConfigureAwait(false))
                    {
                        ddl.CommandTimeout = _commandTimeoutSeconds;
                        await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    // IF NOT EXISTS keeps tables made earlier with the other logging mode; say so rather than alter them.
                    var persistence = new NpgsqlCommand("SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)", connection, transaction);
                    await using (persistence.ConfigureAwait(false))
                    {
                        persistence.CommandTimeout = _commandTimeoutSeconds;
                        persistence.Parameters.Add(Text(_sql.SessionsTable));
                        if (await persistence.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string mode && mode == "u" != _unlogged)
                        {
                            PostgresLog.LoggingModeMismatch(_logger, _sql.SessionsTable, mode == "u", _unlogged);
                        }
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            PostgresLog.SchemaCreated(_logger, _sql.SessionsTable, _unlogged);
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "schema creation");
        }
    }

    /// <summary>
    /// Deletes every expired session, in batches of <see cref="PostgresSessionStoreOptions.CleanupBatchSize"/>
    /// (one short transaction each). Safe to run on several instances at once: each expired session
    /// is deleted by exactly one of them, and live sessions are never touched.
    /// </summary>
    /// <returns>The number of sessions this call deleted.</returns>
    public async Task<long> CleanupExpiredAsync(CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long total = 0;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var command = CreateCommand(_sql.Cleanup);
                await using (command.ConfigureAwait(false))
                {
                    command.Parameters.Add(Timestamp(_timeProvider.GetUtcNow()));
                    command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _cleanupBatchSize });
                    var deleted = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    total += deleted;
                    if (deleted < _cleanupBatchSize)
                    {
                        break;
                    }
                }
            }

            if (total > 0)
            {
                PostgresLog.CleanupDeleted(_logger, total, _sql.SessionsTable);
            }

            return total;
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "cleanup");
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        SessionId.ThrowIfMalformed(session.Id, nameof(session));
        _limits.Validate(session);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        var (names, values) = Split(session.Attributes);
        try
        {
            var batch = CreateBatch();
            await using (batch.ConfigureAwait(false))
            {
                batch.BatchCommands.Add(Command(_sql.DeleteExpired, Text(session.Id), Timestamp(_timeProvider.GetUtcNow())));
                batch.BatchCommands.Add(Command(
                    _sql.Create,
                    Text(session.Id),
                    Timestamp(session.CreatedAt),
                    Timestamp(session.LastAccessedAt),
                    Interval(session.IdleTimeout),
                    Timestamp(session.AbsoluteExpiresAt),
                    Timestamp(session.ExpiresAt),
                    NullableText(session.Principal),
                    new NpgsqlParameter<long> { TypedValue = session.Version },
                    TextArray(names),
                    ByteaArray(values)));
                var created = await batch.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return Convert.ToInt64(created, CultureInfo.InvariantCulture) == 1;
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "create");
        }
    }

    /// <inheritdoc />
    public async ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = CreateCommand(_sql.Load);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(Text(id));
                command.Parameters.Add(Timestamp(_timeProvider.GetUtcNow()));
                command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = _touchFraction });
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    SessionRow? row = null;
                    var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        // The session row and the attribute rows come back in one result; the session row has no name.
                        if (reader.IsDBNull(6))
                        {
                            row = ReadSession(reader, 0);
                        }
                        else
                        {
                            attributes[reader.GetString(6)] = reader.GetFieldValue<byte[]>(7);
                        }
                    }

                    return row is { } r ? r.ToSnapshot(id, attributes) : null;
                }
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "load");
        }
    }

    /// <inheritdoc />
    /// <exception cref="SessionLimitExceededException">A name or value is over the limits, or the session would hold too many attributes.</exception>
    public async ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        _limits.Validate(changes);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        var (names, values) = Split(changes.Set);
        var removed = changes.Removed.Count == 0 ? NoNames : [.. changes.Removed];
        long? count;
        long? version;
        try
        {
            var now = _timeProvider.GetUtcNow();
            var batch = CreateBatch();
            await using (batch.ConfigureAwait(false))
            {
                batch.BatchCommands.Add(Command(_sql.LockLive, Text(changes.Id), Timestamp(now)));
                batch.BatchCommands.Add(Command(
                    _sql.Save,
                    Text(changes.Id),
                    Timestamp(now),
                    TextArray(names),
                    ByteaArray(values),
                    TextArray(removed),
                    new NpgsqlParameter<int> { TypedValue = _limits.MaxAttributes },
                    NullableInterval(changes.IdleTimeout),
                    new NpgsqlParameter<bool> { TypedValue = changes.PrincipalChanged },
                    NullableText(changes.Principal)));
                var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    count = reader.IsDBNull(0) ? null : reader.GetInt64(0);
                    version = reader.IsDBNull(1) ? null : reader.GetInt64(1);
                }
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "save");
        }

        if (count is null)
        {
            return SessionSaveResult.Gone;
        }

        if (version is null)
        {
            _limits.ValidateCount((int)Math.Min(count.Value, int.MaxValue));
        }

        return SessionSaveResult.Saved;
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = CreateCommand(_sql.Delete);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(Text(id));
                command.Parameters.Add(Timestamp(_timeProvider.GetUtcNow()));
                var wasLive = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return wasLive is true;
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "delete");
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(oldId);
        SessionId.ThrowIfMalformed(newId);
        if (string.Equals(oldId, newId, StringComparison.Ordinal))
        {
            throw new ArgumentException("The new session id must differ from the old one.", nameof(newId));
        }

        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = _timeProvider.GetUtcNow();
            var batch = CreateBatch();
            await using (batch.ConfigureAwait(false))
            {
                batch.BatchCommands.Add(Command(_sql.DeleteExpired, Text(newId), Timestamp(now)));
                batch.BatchCommands.Add(Command(_sql.ChangeId, Text(oldId), Text(newId), Timestamp(now)));
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return batch.BatchCommands[1].RecordsAffected == 1;
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return false;
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "id change");
        }
    }

    /// <inheritdoc />
    public async ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id,
        string name,
        ReadOnlyMemory<byte>? expected,
        byte[]? replacement,
        CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        _limits.ValidateAttribute(name, replacement);

        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = _timeProvider.GetUtcNow();
            var batch = CreateBatch();
            await using (batch.ConfigureAwait(false))
            {
                batch.BatchCommands.Add(Command(_sql.LockLive, Text(id), Timestamp(now)));
                batch.BatchCommands.Add(Command(
                    _sql.CompareAndSet,
                    Text(id),
                    Timestamp(now),
                    Text(name),
                    NullableBytea(expected?.ToArray()),
                    NullableBytea(replacement),
                    new NpgsqlParameter<int> { TypedValue = _limits.MaxAttributes }));
                var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    if (!reader.GetBoolean(0))
                    {
                        return AttributeCasResult.Gone;
                    }

                    if (reader.GetBoolean(3))
                    {
                        _limits.ValidateCount(_limits.MaxAttributes + 1);
                    }

                    return reader.GetBoolean(1)
                        ? AttributeCasResult.Succeeded
                        : AttributeCasResult.Mismatch(reader.IsDBNull(2) ? null : reader.GetFieldValue<byte[]>(2));
                }
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "compare-and-set");
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = CreateCommand(_sql.FindByPrincipal);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(Text(principal));
                command.Parameters.Add(Timestamp(_timeProvider.GetUtcNow()));
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    var sessions = new List<SessionSnapshot>();
                    string? currentId = null;
                    SessionRow currentRow = default;
                    var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var id = reader.GetString(0);
                        if (!string.Equals(id, currentId, StringComparison.Ordinal))
                        {
                            if (currentId is not null)
                            {
                                sessions.Add(currentRow.ToSnapshot(currentId, attributes));
                                attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                            }

                            currentId = id;
                            currentRow = ReadSession(reader, 1);
                        }

                        if (!reader.IsDBNull(7))
                        {
                            attributes[reader.GetString(7)] = reader.GetFieldValue<byte[]>(8);
                        }
                    }

                    if (currentId is not null)
                    {
                        sessions.Add(currentRow.ToSnapshot(currentId, attributes));
                    }

                    return sessions;
                }
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "find by principal");
        }
    }

    /// <inheritdoc />
    public async ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = CreateCommand(_sql.Count);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(Timestamp(_timeProvider.GetUtcNow()));
                var count = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return Convert.ToInt64(count, CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Unavailable(ex, "count");
        }
    }

    /// <summary>Stops the background cleanup, waits for a running one, and closes the data source if the store created it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_cleanupTimer is not null)
        {
            await _cleanupTimer.DisposeAsync().ConfigureAwait(false);
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        try
        {
            await _cleanupTask.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The cleanup was cancelled by the disposal itself.
        }

        _disposing.Dispose();
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc cref="DisposeAsync" />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void OnCleanupTimer()
    {
        if (Volatile.Read(ref _disposed) != 0 || Interlocked.Exchange(ref _cleanupRunning, 1) != 0)
        {
            return;
        }

        _cleanupTask = RunCleanupAsync();
    }

    private async Task RunCleanupAsync()
    {
        try
        {
            await CleanupExpiredAsync(_disposing.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
        {
            // Disposal stopped it.
        }
        catch (Exception ex) when (ex is ClusterSessionException or InvalidOperationException or NpgsqlException)
        {
            PostgresLog.CleanupFailed(_logger, ex, _sql.SessionsTable);
        }
        finally
        {
            Volatile.Write(ref _cleanupRunning, 0);
        }
    }

    private ValueTask EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        var task = _schemaTask;
        return task is null || task.IsCompletedSuccessfully ? default : EnsureSchemaSlowAsync(task, cancellationToken);
    }

    private async ValueTask EnsureSchemaSlowAsync(Task task, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException)
        {
            // The server was down at startup: try again now, and let this caller see the outcome.
            lock (_schemaLock)
            {
                if (ReferenceEquals(_schemaTask, task))
                {
                    _schemaTask = CreateSchemaAsync(CancellationToken.None);
                }

                task = _schemaTask!;
            }

            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private NpgsqlCommand CreateCommand(string sql)
    {
        var command = _dataSource.CreateCommand(sql);
        command.CommandTimeout = _commandTimeoutSeconds;
        return command;
    }

    private NpgsqlBatch CreateBatch()
    {
        var batch = _dataSource.CreateBatch();
        batch.Timeout = _commandTimeoutSeconds;
        return batch;
    }

    private static NpgsqlBatchCommand Command(string sql, params ReadOnlySpan<NpgsqlParameter> parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter);
        }

        return command;
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };

    private static NpgsqlParameter NullableText(string? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter NullableBytea(byte[]? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Bytea, Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter TextArray(string[] value)
        => new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = value };

    private static NpgsqlParameter ByteaArray(byte[][] value)
        => new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = value };

    private static NpgsqlParameter<DateTimeOffset> Timestamp(DateTimeOffset value) => new() { TypedValue = value.ToUniversalTime() };

    // Written as microseconds only (no days part), so timestamp arithmetic never depends on the session time zone.
    private static NpgsqlParameter<NpgsqlInterval> Interval(TimeSpan value) => new() { TypedValue = ToInterval(value) };

    private static NpgsqlParameter NullableInterval(TimeSpan? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = value is { } v ? ToInterval(v) : DBNull.Value };

    private static NpgsqlInterval ToInterval(TimeSpan value) => new(0, 0, value.Ticks / TimeSpan.TicksPerMicrosecond);

    private static (string[] Names, byte[][] Values) Split(IReadOnlyDictionary<string, byte[]> attributes)
    {
        if (attributes.Count == 0)
        {
            return (NoNames, NoValues);
        }

        var names = new string[attributes.Count];
        var values = new byte[attributes.Count][];
        var i = 0;
        foreach (var (name, value) in attributes)
        {
            names[i] = name;
            values[i] = value;
            i++;
        }

        return (names, values);
    }

    private static SessionRow ReadSession(NpgsqlDataReader reader, int first) => new(
        reader.GetFieldValue<DateTimeOffset>(first),
        reader.GetFieldValue<DateTimeOffset>(first + 1),
        reader.GetFieldValue<TimeSpan>(first + 2),
        reader.GetFieldValue<DateTimeOffset>(first + 3),
        reader.IsDBNull(first + 4) ? null : reader.GetString(first + 4),
        reader.GetInt64(first + 5));

    private static bool IsStoreFailure(Exception exception, CancellationToken cancellationToken) => exception switch
    {
        OperationCanceledException when cancellationToken.IsCancellationRequested => false,
        PostgresException postgres => IsUnavailableState(postgres.SqlState) || IsMissingSchemaState(postgres.SqlState),
        NpgsqlException or TimeoutException or IOException or SocketException => true,
        OperationCanceledException => true,
        _ => false,
    };

    private static bool IsUnavailableState(string sqlState)
        => sqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
        || sqlState.StartsWith("53", StringComparison.Ordinal) // insufficient resources (too many connections, disk full)
        || sqlState.StartsWith("57P", StringComparison.Ordinal) // shutting down, crashed, not yet accepting connections
        || sqlState == PostgresErrorCodes.QueryCanceled
        || sqlState.StartsWith("58", StringComparison.Ordinal); // system error

    private static bool IsMissingSchemaState(string sqlState)
        => sqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName;

    private Exception Unavailable(Exception exception, string operation)
    {
        PostgresLog.StoreUnavailable(_logger, exception, operation);
        if (exception is PostgresException postgres && IsMissingSchemaState(postgres.SqlState))
        {
            return new InvalidOperationException(
                $"The session tables {_sql.SessionsTable} / {_sql.AttributesTable} do not exist on PostgreSQL at {_serverDescription}: " +
                "call PostgresSessionStore.CreateSchemaAsync(), set PostgresSessionStoreOptions.CreateSchemaOnStartup, or run schema.sql.",
                exception);
        }

        return new SessionStoreUnavailableException(
            $"The PostgreSQL session store at {_serverDescription} failed during {operation}: {exception.Message} " +
            $"Check that the server is running and reachable, that the pool (connection string: Maximum Pool Size, Timeout) suits the load, and CommandTimeout ({_commandTimeoutSeconds}s).",
            exception);
    }

    private readonly record struct SessionRow(
        DateTimeOffset CreatedAt,
        DateTimeOffset LastAccessedAt,
        TimeSpan IdleTimeout,
        DateTimeOffset AbsoluteExpiresAt,
        string? Principal,
        long Version)
    {
        public SessionSnapshot ToSnapshot(string id, Dictionary<string, byte[]> attributes)
            => new(id, CreatedAt, LastAccessedAt, IdleTimeout, AbsoluteExpiresAt, Principal, Version, attributes);
    }
}
