using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ClusterSession.Caching;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// A session store on Redis, Redis Cluster or Garnet. Loading a session is one plain HGETALL (Redis's TTL keeps only
/// live sessions; the throttled touch, when due, is a script); saving a change set is one atomic Lua script on the
/// session's one hash.
/// docs/redis-data-model.md describes every key, field and script.
/// </summary>
/// <remarks>
/// Each operation runs under one deadline, <see cref="RedisSessionStoreOptions.OperationTimeout"/> (a linked
/// <see cref="CancellationTokenSource"/>, so the caller's token can end it sooner), whatever number of round
/// trips it takes. The store logs nothing per failed operation: it throws, and the caller logs once.
/// </remarks>
public sealed partial class RedisSessionStore : ISessionStore, IStoreTelemetry, IAsyncDisposable, IDisposable
{
    // Every command must see the latest state: never read from a replica, fail over with the primary.
    private const CommandFlags Primary = CommandFlags.DemandMaster;
    private const int DefaultPort = 6379;

    private readonly RedisSessionStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RedisKeys _keys;
    private readonly RedisValue _touchPerMille;

    /// <summary>
    /// The Load script's touch fraction (per mille of the idle timeout) of a load that must not touch: a million idle
    /// timeouts, which no last access is ever that old.
    /// </summary>
    private static readonly RedisValue NeverTouchPerMille = 1_000_000_000L;
    private readonly RedisAnnounce _announce;
    private readonly RedisNearChannel? _near;
    private readonly NearCachedSessionStore? _layer;
    private readonly RedisConnection _connection;
    private readonly RedisEventChannel _events;
    private readonly SessionStoreOperations _operations;
    private readonly RedisTopologyRefresh _topology;
    private readonly RedisReplicaWait? _replicaWait;
    private readonly (string? Address, int? Port) _endpoint;
    private int _evictionPolicyChecked;

    // The layout this node writes and its heartbeat (RedisSessionStore.Layout.cs).
    private readonly string _nodeId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private readonly Lock _layoutGate = new();
    private readonly CancellationTokenSource _layoutStop = new();
    private Task<RedisLayout>? _layoutStart;
    private Task? _layoutLoop;
    private int _layout;
    private long _storeClockOffsetMs;
    private int _storeClockSampled;

    /// <summary>Creates a store. It connects on first use.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="timeProvider">Default <see cref="TimeProvider.System"/>: expiry is decided, and accesses dated, on Redis's own clock (TIME), one clock for every node. Any other provider replaces that clock (for tests that move time, such as FakeTimeProvider); every node must then use the same one.</param>
    /// <param name="logger">The logger. Default: none.</param>
    /// <exception cref="OptionsValidationException">An option is invalid; the message names it and the fix.</exception>
    public RedisSessionStore(RedisSessionStoreOptions options, TimeProvider? timeProvider = null, ILogger<RedisSessionStore>? logger = null)
        : this(options, null, timeProvider, logger, meterFactory: null)
    {
    }

    /// <summary>Creates a store on a multiplexer the caller owns (and disposes).</summary>
    /// <param name="multiplexer">The application's shared multiplexer.</param>
    /// <param name="options">The options; <see cref="RedisSessionStoreOptions.Configuration"/> is ignored.</param>
    /// <param name="timeProvider">Default <see cref="TimeProvider.System"/>: expiry is decided, and accesses dated, on Redis's own clock (TIME), one clock for every node. Any other provider replaces that clock (for tests that move time, such as FakeTimeProvider); every node must then use the same one.</param>
    /// <param name="logger">The logger. Default: none.</param>
    public RedisSessionStore(IConnectionMultiplexer multiplexer, RedisSessionStoreOptions? options = null, TimeProvider? timeProvider = null, ILogger<RedisSessionStore>? logger = null)
        : this(WithMultiplexer(multiplexer, options), multiplexer, timeProvider, logger, meterFactory: null)
    {
    }

    /// <summary>
    /// Creates a store for DI registration, with the application's clock, logger and meter factory (a store built with
    /// <c>new</c> owns its meter instead).
    /// </summary>
    /// <param name="provider">The application's services.</param>
    /// <param name="options">The options.</param>
    /// <param name="multiplexer">The application's multiplexer, or null for one the store creates and owns.</param>
    internal static RedisSessionStore Create(IServiceProvider provider, RedisSessionStoreOptions options, IConnectionMultiplexer? multiplexer = null)
        => new(
            multiplexer is null ? options : WithMultiplexer(multiplexer, options),
            multiplexer,
            (TimeProvider?)provider.GetService(typeof(TimeProvider)),
            (ILogger<RedisSessionStore>?)provider.GetService(typeof(ILogger<RedisSessionStore>)),
            (IMeterFactory?)provider.GetService(typeof(IMeterFactory)));

    /// <summary>The constructor behind the public ones and <see cref="Create"/>.</summary>
    internal RedisSessionStore(RedisSessionStoreOptions options, IConnectionMultiplexer? multiplexer, TimeProvider? timeProvider, ILogger<RedisSessionStore>? logger, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _keys = new RedisKeys(options.KeyPrefix);
        _touchPerMille = (long)Math.Round(options.TouchIntervalFraction * 1000);
        _near = options.NearCache.Enabled
            ? new RedisNearChannel(options.KeyPrefix + NearChannelSuffix, options.NearCache.HeartbeatInterval, _logger, NearKeyOf)
            : null;
        _layer = _near is null ? null : new NearCachedSessionStore(new NearCacheBackingStore(this, LoadDirectAsync, SaveDirectAsync, DeleteDirectAsync, ChangeIdDirectAsync, CompareAndSetDirectAsync, AdmitDirectAsync), _near, options.NearCache, options.TouchIntervalFraction, _time, meterFactory);
        _announce = AnnounceArguments();
        _connection = new RedisConnection(options, multiplexer);
        _events = new RedisEventChannel(_connection, _keys, options.KeyPrefix, options.OperationTimeout, _time, _logger);
        _endpoint = EndpointOf(options, multiplexer);

        // A multiplexer the application configured may put keys (which hold session ids) into messages.
        _operations = RedisFailures.Operations(options.OperationTimeout, _connection.OwnsMultiplexer ? null : options.KeyPrefix);
        _topology = new RedisTopologyRefresh(_logger);
        _replicaWait = options.WaitForReplicas > 0 ? new RedisReplicaWait(options.WaitForReplicas, options.ReplicaWaitTimeout) : null;
    }

    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCreate(session, _options.Limits);
        return RunAsync("create", (Store: this, Session: session), static (s, token) => s.Store.CreateCoreAsync(s.Session, token), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return _layer is { } layer ? layer.LoadAsync(id, cancellationToken) : LoadDirectAsync(id, cancellationToken);
    }

    private ValueTask<SessionSnapshot?> LoadDirectAsync(string id, CancellationToken cancellationToken)
        => RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, token), cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// <see cref="SessionLoadOptions.NoTouch"/> reads the session as a load does but never touches it (when the store
    /// must judge it, the Load script runs with a touch threshold no idle timeout reaches, and writes nothing). With the near cache on,
    /// such a load goes to the store and is not cached (a copy served from memory would start a background touch).
    /// </remarks>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
    {
        if ((options & SessionLoadOptions.NoTouch) == 0)
        {
            return LoadAsync(id, cancellationToken);
        }

        SessionId.ThrowIfMalformed(id);
        return RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, touch: false, token), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckSave(changes, _options.Limits);
        if (_layer is { } layer)
        {
            return layer.SaveAsync(changes, cancellationToken);
        }

        var saving = SaveDirectAsync(changes, cancellationToken);
        return saving.IsCompletedSuccessfully ? new(saving.Result.Result) : ResultOf(saving);

        static async ValueTask<SessionSaveResult> ResultOf(ValueTask<SessionSaveOutcome> saving) => (await saving.ConfigureAwait(false)).Result;
    }

    private ValueTask<SessionSaveOutcome> SaveDirectAsync(SessionChanges changes, CancellationToken cancellationToken)
        => RunAsync("save", (Store: this, Changes: changes), static (s, token) => s.Store.SaveCoreAsync(s.Changes, token), cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return _layer is { } layer ? layer.DeleteAsync(id, cancellationToken) : DeleteDirectAsync(id, cancellationToken);
    }

    private ValueTask<bool> DeleteDirectAsync(string id, CancellationToken cancellationToken)
        => RunAsync("delete", (Store: this, Id: id), static (s, token) => s.Store.DeleteCoreAsync(RedisSessionRef.FromId(s.Id), null, token), cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        return !SessionStoreContract.CheckChangeId(oldId, newId)
            ? new(false)
            : _layer is { } layer ? layer.ChangeIdAsync(oldId, newId, cancellationToken) : ChangeIdDirectAsync(oldId, newId, cancellationToken);
    }

    private ValueTask<bool> ChangeIdDirectAsync(string oldId, string newId, CancellationToken cancellationToken)
    {
        return RunAsync("id change", (Store: this, OldId: oldId, NewId: newId), static (s, token) => s.Store.ChangeIdCoreAsync(s.OldId, s.NewId, token), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id,
        string name,
        ReadOnlyMemory<byte>? expected,
        byte[]? replacement,
        CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCompareAndSet(id, name, replacement, _options.Limits);
        return _layer is { } layer
            ? layer.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken)
            : CompareAndSetDirectAsync(id, name, expected, replacement, cancellationToken);
    }

    private ValueTask<AttributeCasResult> CompareAndSetDirectAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken)
    {
        var args = RedisScripts.CompareAndSetArgs(Clock(), _announce, name, expected, replacement, _options.Limits.MaxAttributes);
        return RunAsync("compare-and-set", (Store: this, Id: id, Args: args), static (s, token) => s.Store.CompareAndSetCoreAsync(s.Id, s.Args, token), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        return RunAsync("find by principal", (Store: this, Principal: principal), static (s, token) => s.Store.FindByPrincipalCoreAsync(s.Principal, token), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Cost: a SCAN of every master for this store's session keys (O(keys in the database), in pages
    /// of 1,000), then one pipelined HMGET per session found to leave out sessions that expired by the
    /// store's clock or are mid-move. Meant for dashboards and tests, not for every request.
    /// </remarks>
    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
        => RunAsync("count", this, static (store, token) => store.CountCoreAsync(token), cancellationToken);

    /// <summary>Disposes the multiplexer when the store created it from <see cref="RedisSessionStoreOptions.Configuration"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopLayoutAsync().ConfigureAwait(false);
        if (_layer is { } layer)
        {
            await layer.DisposeAsync().ConfigureAwait(false);
        }

        if (_near is { } near)
        {
            await near.DisposeAsync().ConfigureAwait(false);
        }

        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Disposes the multiplexer when the store created it, as <see cref="DisposeAsync"/> does; prefer
    /// <see cref="DisposeAsync"/> where the caller can await.
    /// </summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    // What the instrumentation reports about this store: db.system.name=redis and the first configured endpoint (a cluster
    // or Sentinel deployment has several; the span names the one the application was pointed at).
    string IStoreTelemetry.DbSystemName => "redis";

    string? IStoreTelemetry.ServerAddress => _endpoint.Address;

    int? IStoreTelemetry.ServerPort => _endpoint.Port;

    private static (string? Address, int? Port) EndpointOf(RedisSessionStoreOptions options, IConnectionMultiplexer? multiplexer)
    {
        EndPoint? endpoint;
        try
        {
            endpoint = multiplexer is not null
                ? multiplexer.GetEndPoints(configuredOnly: true).FirstOrDefault()
                : options.Configuration is { } configuration ? ConfigurationOptions.Parse(configuration).EndPoints.FirstOrDefault() : null;
        }
        catch (ArgumentException)
        {
            endpoint = null;
        }

        return endpoint switch
        {
            DnsEndPoint dns => (dns.Host, dns.Port == 0 ? DefaultPort : dns.Port),
            IPEndPoint ip => (ip.Address.ToString(), ip.Port == 0 ? DefaultPort : ip.Port),
            _ => (null, null),
        };
    }

    private static RedisSessionStoreOptions WithMultiplexer(IConnectionMultiplexer multiplexer, RedisSessionStoreOptions? options)
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        var source = options ?? new RedisSessionStoreOptions();
        return new RedisSessionStoreOptions
        {
            ConnectionMultiplexerFactory = () => Task.FromResult(multiplexer),
            KeyPrefix = source.KeyPrefix,
            TouchIntervalFraction = source.TouchIntervalFraction,
            OperationTimeout = source.OperationTimeout,
            Limits = source.Limits,
            KeyRingKey = source.KeyRingKey,
            WaitForReplicas = source.WaitForReplicas,
            ReplicaWaitTimeout = source.ReplicaWaitTimeout,
            NearCache = source.NearCache,
        };
    }

    private async Task<bool> CreateCoreAsync(SessionSnapshot session, CancellationToken token)
    {
        var layout = Layout;
        var target = RedisSessionRef.FromId(session.Id!);

        // The script dates the session on the store's clock: only the lifetimes go out, never this node's dates.
        var lifetimeMs = (long)(session.AbsoluteExpiresAt - session.CreatedAt).TotalMilliseconds;
        var args = new List<RedisValue>(6 + (2 * session.Attributes.Count))
        {
            Clock(),

            // In layout 2 the creation date is rounded to the second: the upgrade's tell of a current node ('m').
            layout == RedisLayout.Previous ? "m" : "n",
            (long)session.IdleTimeout.TotalMilliseconds,
            lifetimeMs,
            session.Version,
            session.Principal is { } bound ? "," + bound : RedisValue.EmptyString,
        };
        if (session.Principal is { } principal)
        {
            // Listed before it exists, so a crash between the two calls cannot leave it unlisted. Scored by the
            // store's clock plus the lifetime and the operation's deadline, so never before the session's own
            // absolute expiry, which the create script dates later within the same deadline.
            var listedMs = lifetimeMs + (long)_options.OperationTimeout.TotalMilliseconds;
            await IndexAddAsync(principal, target, "l", listedMs, token).ConfigureAwait(false);
        }

        foreach (var (name, value) in session.Attributes)
        {
            args.Add(RedisKeys.AttributeField(name));
            args.Add(value);
        }

        var created = await WriteAsync(RedisScripts.Create, CreateKey(target, layout), args.ToArray(), token).ConfigureAwait(false);
        return (int)created == 1;
    }

    private Task<SessionSnapshot?> LoadCoreAsync(string id, CancellationToken token) => LoadCoreAsync(id, touch: true, token);

    private async Task<SessionSnapshot?> LoadCoreAsync(string id, bool touch, CancellationToken token)
    {
        var layout = Layout;
        if (layout != RedisLayout.Current || (TestClockMs() ?? StoreClockMs()) is not { } now)
        {
            // While the layout is upgraded a session may sit under either key: the Load script finds (and moves) it.
            return await LoadWithScriptAsync(id, touch ? _touchPerMille : NeverTouchPerMille, token).ConfigureAwait(false);
        }

        // Usually one plain HGETALL. A key that exists is live: its TTL is min(last access + idle, absolute expiry) on
        // the store's clock, and every write sets it. A '#m' field (moving to a new id) reads as absent, as in the
        // scripts. Only when the store's clock, as this node estimates it, says the touch is due (once per idle timeout
        // x TouchIntervalFraction per session) or the session is over (with a test clock, which Redis's TTL does not
        // follow; or an estimate a few ms ahead of a TTL about to end) does the Load script run: it judges on the store's
        // own clock, deletes a dead session and touches a live one, with an HGETALL beside it for the result.
        var hash = await CommandAsync(static (db, key) => db.HashGetAllAsync(key, Primary), _keys.Session(RedisSessionRef.FromId(id)), token).ConfigureAwait(false);
        if (hash.Length == 0 || RedisSnapshots.TryRead(id, null, hash) is not { } snapshot)
        {
            return null;
        }

        var accessMs = ToMs(snapshot.LastAccessedAt);
        var idleMs = (long)snapshot.IdleTimeout.TotalMilliseconds;
        var over = now >= Math.Min(accessMs + idleMs, ToMs(snapshot.AbsoluteExpiresAt));
        var touchDue = touch && now - accessMs >= idleMs * (long)_touchPerMille / 1000.0;
        return over || touchDue
            ? await LoadWithScriptAsync(id, touch ? _touchPerMille : NeverTouchPerMille, token).ConfigureAwait(false)
            : snapshot;
    }

    private async Task<SessionSnapshot?> LoadWithScriptAsync(string id, RedisValue touchPerMille, CancellationToken token)
    {
        // One round trip: the Load script judges the session on the store's clock (and touches it when due), then a
        // plain HGETALL, sent in the same batch, reads it. The hash never goes through Lua, which costs the server more
        // than both commands together; the two need not be atomic, as the HGETALL sees whatever the latest write left.
        var keys = SessionKeys(RedisSessionRef.FromId(id), Layout);
        var (live, hash) = await CommandAsync(
            static async (db, state) =>
            {
                var batch = db.CreateBatch();
                var judged = batch.ScriptEvaluateAsync(RedisScripts.Load, state.Keys, [state.Now, state.TouchPerMille], Primary);
                var read = batch.HashGetAllAsync(state.Keys[0], Primary);
                batch.Execute();
                var live = (int)await judged.ConfigureAwait(false);
                var hash = await read.ConfigureAwait(false);

                // 2: a node still writing layout 2 met a session another node moved to layout 3 (only while upgrading).
                return live == 2 ? (true, await db.HashGetAllAsync(state.Keys[1], Primary).ConfigureAwait(false)) : (live == 1, hash);
            },
            (Keys: keys, Now: Clock(), TouchPerMille: touchPerMille),
            token).ConfigureAwait(false);
        return live ? RedisSnapshots.TryRead(id, null, hash) : null;
    }

    private async Task<SessionSaveOutcome> SaveCoreAsync(SessionChanges changes, CancellationToken token)
    {
        var args = RedisScripts.SaveArgs(
            Clock(), _announce, _options.Limits.MaxAttributes, changes.IdleTimeout, (changes.Principal, changes.PrincipalChanged), changes.Set, changes.Removed);
        var session = RedisSessionRef.FromId(changes.Id);
        var result = await WriteChangeAsync(session, RedisScripts.Save, args, token).ConfigureAwait(false);
        switch ((int)result[0])
        {
            case 0:
                return new(SessionSaveResult.Gone, 0);
            case -1:
                throw _options.Limits.TooManyAttributes();
        }

        if (changes.PrincipalChanged)
        {
            var absolute = (long)result[2];
            var oldPrincipal = (int)result[3] == 1 ? (string?)result[4] : null;
            await MovePrincipalAsync(session, oldPrincipal, changes.Principal, absolute, token).ConfigureAwait(false);
        }

        return new(SessionSaveResult.Saved, (long)result[1]);
    }

    /// <summary>
    /// Deletes a session the store found by itself (a revocation by handle, a session the cap ended); with
    /// <paramref name="expectedPrincipal"/>, only when it is bound to that principal. With the near cache on, it returns
    /// once every other live node dropped its copy (docs/near-cache.md, "Ends are acknowledged").
    /// </summary>
    private Task<bool> EndSessionAsync(RedisSessionRef session, string? expectedPrincipal, CancellationToken token)
    {
        if (_layer is not { } layer || NearKeyOf(session) is not { } key)
        {
            return DeleteCoreAsync(session, expectedPrincipal, token);
        }

        return layer.EndAsync(
            key,
            async t =>
            {
                var deleted = await DeleteCoreAsync(session, expectedPrincipal, t).ConfigureAwait(false);
                return (deleted, deleted);
            },
            token).AsTask();
    }

    /// <summary>Deletes a session; with <paramref name="expectedPrincipal"/>, only when it is bound to that principal.</summary>
    private async Task<bool> DeleteCoreAsync(RedisSessionRef session, string? expectedPrincipal, CancellationToken token)
    {
        var result = await WriteChangeAsync(session, RedisScripts.Delete, RedisScripts.DeleteArgs(Clock(), _announce, expectedPrincipal), token).ConfigureAwait(false);
        if ((int)result[1] == 1)
        {
            await IndexRemoveAsync((string)result[2]!, session, token).ConfigureAwait(false);
        }

        return (int)result[0] == 1;
    }

    private async Task<bool> ChangeIdCoreAsync(string oldId, string newId, CancellationToken token)
    {
        // Three single-slot steps instead of RENAME (CROSSSLOT in a cluster): mark the old hash as
        // moving and read it (saves to it now return Gone, so none is lost), create the new hash,
        // delete the old one. A crash in between leaves the old hash marked: it reads as absent and expires.
        var layout = Layout;
        var source = RedisSessionRef.FromId(oldId);
        var target = RedisSessionRef.FromId(newId);
        var oldKeys = SessionKeys(source, layout);
        var now = Clock();
        var read = await WriteAsync(RedisScripts.BeginMove, oldKeys, RedisScripts.BeginMoveArgs(now, _announce), token).ConfigureAwait(false);

        if (read.IsNull)
        {
            return false;
        }

        var hash = (RedisResult[])read!;
        var snapshot = RedisSnapshots.Read(oldId, hash);
        var args = new List<RedisValue>(hash.Length + 1) { now, "c", RedisValue.Null };
        for (var i = 0; i < hash.Length; i += 2)
        {
            var field = (RedisValue)hash[i];
            if (field == RedisKeys.Meta)
            {
                args[2] = (RedisValue)hash[i + 1];
            }
            else if (field != RedisKeys.Moving)
            {
                args.Add(field);
                args.Add((RedisValue)hash[i + 1]);
            }
        }

        // The index learns the new id before the session exists, so the session is never unlisted;
        // readers of the index check each id against its hash anyway.
        if (snapshot.Principal is { } principal)
        {
            await IndexAddAsync(principal, target, "a", ToMs(snapshot.AbsoluteExpiresAt), token).ConfigureAwait(false);
        }

        var created = (int)await WriteAsync(RedisScripts.Create, CreateKey(target, layout), args.ToArray(), token).ConfigureAwait(false);
        if (created == 0)
        {
            await WriteAsync(RedisScripts.AbortMove, oldKeys, [], token).ConfigureAwait(false);
            return false;
        }

        // Both layouts' keys of the old id share one slot: one DEL removes whichever holds the marked hash.
        await CommandAsync(
            static (db, s) => s.Wait is { } wait
                ? wait.ExecuteAsync(db, s.Keys[0], "DEL", [.. s.Keys.Select(k => (object)k)])
                : db.ExecuteAsync("DEL", [.. s.Keys.Select(k => (object)k)], Primary),
            (Wait: _replicaWait, Keys: oldKeys),
            token).ConfigureAwait(false);
        if (snapshot.Principal is { } boundTo)
        {
            await IndexRemoveAsync(boundTo, source, token).ConfigureAwait(false);
        }

        return true;
    }

    private async Task<AttributeCasResult> CompareAndSetCoreAsync(string id, RedisValue[] args, CancellationToken token)
    {
        var result = await WriteChangeAsync(RedisSessionRef.FromId(id), RedisScripts.CompareAndSet, args, token).ConfigureAwait(false);
        return (int)result[0] switch
        {
            1 => AttributeCasResult.Succeeded,
            0 => AttributeCasResult.Gone,
            -1 => throw _options.Limits.TooManyAttributes(),
            _ => AttributeCasResult.Mismatch((int)result[1] == 1 ? (byte[]?)result[2] : null),
        };
    }

    /// <summary>
    /// The principal's index entries: the current index's (tag and handle), and in layout 2 also the previous index's
    /// (ids). While migrating, the previous index is moved into the current one first.
    /// </summary>
    private async Task<List<(RedisSessionRef Session, RedisKey Index, RedisValue Member)>> IndexEntriesAsync(string principal, RedisValue clock, CancellationToken token)
    {
        var layout = Layout;
        if (layout == RedisLayout.Migrating)
        {
            await MovePrincipalIndexAsync(principal, token).ConfigureAwait(false);
        }

        RedisKey[] indexes = layout == RedisLayout.Previous ? [_keys.PreviousIndex(principal), _keys.Index(principal)] : [_keys.Index(principal)];
        var members = await CommandAsync(
            static (db, state) => Task.WhenAll(state.Indexes.Select(index => db.ScriptEvaluateAsync(RedisScripts.IndexMembers, [index], [state.Clock], Primary))),
            (Indexes: indexes, Clock: clock),
            token).ConfigureAwait(false);
        var entries = new List<(RedisSessionRef, RedisKey, RedisValue)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < indexes.Length; i++)
        {
            var previous = layout == RedisLayout.Previous && i == 0;
            foreach (var member in (RedisValue[])members[i]!)
            {
                var text = (string?)member;
                RedisSessionRef? session = previous
                    ? (SessionId.IsWellFormed(text) ? RedisSessionRef.FromId(text) : null)
                    : RedisSessionRef.FromMember(text);
                if (session is { } found && seen.Add(found.Handle))
                {
                    entries.Add((found, indexes[i], member));
                }
            }
        }

        return entries;
    }

    private async Task<IReadOnlyList<SessionSnapshot>> FindByPrincipalCoreAsync(string principal, CancellationToken token)
    {
        var clock = Clock();
        var layout = Layout;
        var entries = await IndexEntriesAsync(principal, clock, token).ConfigureAwait(false);
        if (entries.Count == 0)
        {
            return [];
        }

        // One read per listed session, all in flight at once (each is a single-slot script that judges expiry on the
        // store's clock). The session hash is the truth; the index is only a hint, so stale entries are dropped here.
        var keys = entries.Select(e => SessionKeys(e.Session, layout)).ToArray();
        var hashes = await CommandAsync(
            static (db, state) => Task.WhenAll(state.Keys.Select(k => db.ScriptEvaluateAsync(RedisScripts.Peek, k, [state.Clock], Primary))),
            (Keys: keys, Clock: clock),
            token).ConfigureAwait(false);
        var found = new List<SessionSnapshot>(entries.Count);
        var stale = new Dictionary<RedisKey, List<RedisValue>>();
        for (var i = 0; i < entries.Count; i++)
        {
            var hash = hashes[i].IsNull ? [] : RedisSnapshots.Entries((RedisResult[])hashes[i]!);

            // The store keeps no ids: a session found through the index is known by its handle only.
            var snapshot = hash.Length == 0 ? null : RedisSnapshots.TryRead(null, entries[i].Session.Handle, hash);
            if (snapshot is not null && string.Equals(snapshot.Principal, principal, StringComparison.Ordinal))
            {
                found.Add(snapshot);
            }
            else if (snapshot is null || !RedisSnapshots.IsMoving(hash))
            {
                if (!stale.TryGetValue(entries[i].Index, out var operations))
                {
                    stale[entries[i].Index] = operations = [];
                }

                operations.Add("r");
                operations.Add(entries[i].Member);
            }
        }

        await Task.WhenAll(stale.Select(s => UpdateIndexAsync(s.Key, [.. s.Value], token))).ConfigureAwait(false);
        return found;
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(handle);
        return !SessionHandle.IsWellFormed(handle)
            ? new(false)
            : RunAsync("delete by handle", (Store: this, Principal: principal, Handle: handle), static (s, token) => s.Store.DeleteByHandleCoreAsync(s.Principal, s.Handle, token), cancellationToken);
    }

    private async Task<bool> DeleteByHandleCoreAsync(string principal, string handle, CancellationToken token)
    {
        // The index names the session (its key is rebuilt from the entry); the Delete script deletes it only when its
        // hash is still bound to this principal, so a handle of another principal's session deletes nothing.
        foreach (var (session, _, _) in await IndexEntriesAsync(principal, Clock(), token).ConfigureAwait(false))
        {
            if (string.Equals(session.Handle, handle, StringComparison.Ordinal))
            {
                return await EndSessionAsync(session, principal, token).ConfigureAwait(false);
            }
        }

        return false;
    }

    private Task<long> CountCoreAsync(CancellationToken token)
        => CommandAsync(
            static async (db, state) =>
            {
                long count = 0;
                var mastersCounted = 0;
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    mastersCounted++;

                    // Each master's keys are judged on that master's clock, as its scripts judge them.
                    var now = state.TestClockMs ?? new DateTimeOffset(DateTime.SpecifyKind(await server.TimeAsync().ConfigureAwait(false), DateTimeKind.Utc)).ToUnixTimeMilliseconds();
                    var batch = new List<Task<RedisValue[]>>();
                    foreach (var pattern in state.Patterns)
                    {
                        await foreach (var key in server.KeysAsync(db.Database, pattern, pageSize: 1000).WithCancellation(state.Token).ConfigureAwait(false))
                        {
                            batch.Add(db.HashGetAsync(key, RedisKeys.CountFields, Primary));
                        }
                    }

                    foreach (var fields in await Task.WhenAll(batch).ConfigureAwait(false))
                    {
                        if (RedisSnapshots.IsLive(fields, now))
                        {
                            count++;
                        }
                    }
                }

                // No primary reachable is an outage, not an empty store.
                return mastersCounted > 0 ? count : throw SessionStoreUnavailableException.Refused("Redis", "count");
            },
            (Patterns: SessionPatterns(), TestClockMs: TestClockMs(), Token: token),
            token);

    /// <summary>The SCAN patterns of the session keys that may exist now: both layouts' until the upgrade finished.</summary>
    private string[] SessionPatterns()
        => Layout == RedisLayout.Current ? [_keys.SessionPattern] : [_keys.SessionPattern, _keys.PreviousSessionPattern];

    private async Task MovePrincipalAsync(RedisSessionRef session, string? oldPrincipal, string? newPrincipal, long absoluteMs, CancellationToken token)
    {
        var add = newPrincipal is null
            ? Task.CompletedTask
            : IndexAddAsync(newPrincipal, session, "a", absoluteMs, token);
        var remove = oldPrincipal is null || string.Equals(oldPrincipal, newPrincipal, StringComparison.Ordinal)
            ? Task.CompletedTask
            : IndexRemoveAsync(oldPrincipal, session, token);
        await Task.WhenAll(add, remove).ConfigureAwait(false);
    }

    private async Task UpdateIndexAsync(RedisKey index, RedisValue[] operations, CancellationToken token)
    {
        var args = new RedisValue[operations.Length + 1];
        args[0] = Clock();
        operations.CopyTo(args, 1);
        await WriteAsync(RedisScripts.Index, index, args, token).ConfigureAwait(false);
    }

    /// <summary>
    /// The clock argument of every script: empty, so the script reads the store's clock (Redis TIME), unless the
    /// store was given a test clock (a <see cref="TimeProvider"/> other than the system's), whose milliseconds it sends.
    /// </summary>
    private RedisValue Clock() => TestClockMs() is { } ms ? ms : RedisValue.EmptyString;

    private long? TestClockMs() => ReferenceEquals(_time, TimeProvider.System) ? null : _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long ToMs(DateTimeOffset time) => time.ToUnixTimeMilliseconds();
}
