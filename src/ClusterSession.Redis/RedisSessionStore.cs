using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// A session store on Redis, Redis Cluster or Garnet. Loading a session (with its throttled touch)
/// and saving a change set each cost one round trip: an atomic Lua script on the session's one hash.
/// docs/redis-data-model.md describes every key, field and script.
/// </summary>
public sealed partial class RedisSessionStore : ISessionStore, IAsyncDisposable
{
    private readonly RedisSessionStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RedisKeys _keys;
    private readonly RedisValue _touchPerMille;
    private readonly string _saveScript;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly bool _ownsMultiplexer;
    private IConnectionMultiplexer? _multiplexer;
    private bool _disposed;

    /// <summary>Creates a store. It connects on first use.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="timeProvider">The clock that dates accesses and expiries. Default: <see cref="TimeProvider.System"/>.</param>
    /// <param name="logger">The logger. Default: none.</param>
    /// <exception cref="OptionsValidationException">An option is invalid; the message names it and the fix.</exception>
    public RedisSessionStore(RedisSessionStoreOptions options, TimeProvider? timeProvider = null, ILogger<RedisSessionStore>? logger = null)
    {
        RedisSessionStoreOptionsValidator.ThrowIfInvalid(options);
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _keys = new RedisKeys(options.KeyPrefix);
        _touchPerMille = (long)Math.Round(options.TouchIntervalFraction * 1000);
        _saveScript = RedisScripts.SaveWithLimit(options.Limits.MaxAttributes);
        _ownsMultiplexer = options.ConnectionMultiplexerFactory is null;
    }

    /// <summary>Creates a store on a multiplexer the caller owns (and disposes).</summary>
    /// <param name="multiplexer">The application's shared multiplexer.</param>
    /// <param name="options">The options; <see cref="RedisSessionStoreOptions.Configuration"/> is ignored.</param>
    /// <param name="timeProvider">The clock that dates accesses and expiries. Default: <see cref="TimeProvider.System"/>.</param>
    /// <param name="logger">The logger. Default: none.</param>
    public RedisSessionStore(IConnectionMultiplexer multiplexer, RedisSessionStoreOptions? options = null, TimeProvider? timeProvider = null, ILogger<RedisSessionStore>? logger = null)
        : this(WithMultiplexer(multiplexer, options), timeProvider, logger)
    {
        _multiplexer = multiplexer;
    }

    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        SessionId.ThrowIfMalformed(session.Id, nameof(session));
        _options.Limits.Validate(session);
        return CreateSlowAsync(session, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        var result = await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.Load, [state.Keys.Session(state.Id)], [state.Now, state.TouchPerMille]),
            (Keys: _keys, Id: id, Now: NowMs(), TouchPerMille: _touchPerMille),
            cancellationToken).ConfigureAwait(false);
        return result.IsNull ? null : ReadSnapshot(id, (RedisResult[])result!);
    }

    /// <inheritdoc />
    public async ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        _options.Limits.Validate(changes);
        // Only what the change needs goes out: a one-attribute write is now, shape, field and value.
        var hasIdle = changes.IdleTimeout is not null;
        var setsPrincipal = changes.PrincipalChanged && changes.Principal is not null;
        var shape = changes.Set.Count.ToString(CultureInfo.InvariantCulture)
            + (hasIdle ? "i" : string.Empty)
            + (setsPrincipal ? "p" : changes.PrincipalChanged ? "c" : string.Empty);
        var args = new RedisValue[2 + (hasIdle ? 1 : 0) + (setsPrincipal ? 1 : 0) + (2 * changes.Set.Count) + changes.Removed.Count];
        args[0] = NowMs();
        args[1] = shape;
        var i = 2;
        if (changes.IdleTimeout is { } idle)
        {
            args[i++] = (long)idle.TotalMilliseconds;
        }

        if (setsPrincipal)
        {
            args[i++] = changes.Principal;
        }

        foreach (var (name, value) in changes.Set)
        {
            args[i++] = RedisKeys.AttributeField(name);
            args[i++] = value;
        }

        foreach (var name in changes.Removed)
        {
            args[i++] = RedisKeys.AttributeField(name);
        }

        var result = (RedisResult[])(await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(state.Script, [state.Key], state.Args),
            (Key: _keys.Session(changes.Id), Args: args, Script: _saveScript),
            cancellationToken).ConfigureAwait(false))!;
        switch ((int)result[0])
        {
            case 0:
                return SessionSaveResult.Gone;
            case -1:
                throw TooManyAttributes((int)result[1]);
        }

        if (changes.PrincipalChanged)
        {
            var absolute = (long)result[2];
            var oldPrincipal = (int)result[3] == 1 ? (string?)result[4] : null;
            await MovePrincipalAsync(changes.Id, oldPrincipal, changes.Principal, absolute, cancellationToken).ConfigureAwait(false);
        }

        return SessionSaveResult.Saved;
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        var result = (RedisResult[])(await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.Delete, [state.Key], [state.Now]),
            (Key: _keys.Session(id), Now: NowMs()),
            cancellationToken).ConfigureAwait(false))!;
        if ((int)result[1] == 1)
        {
            await UpdateIndexAsync((string)result[2]!, ["r", id], cancellationToken).ConfigureAwait(false);
        }

        return (int)result[0] == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(oldId);
        SessionId.ThrowIfMalformed(newId);
        if (string.Equals(oldId, newId, StringComparison.Ordinal))
        {
            return false;
        }

        // Three single-slot steps instead of RENAME (CROSSSLOT in a cluster): mark the old hash as
        // moving and read it (saves to it now return Gone, so none is lost), create the new hash,
        // delete the old one. A crash in between leaves the old hash marked: it reads as absent and expires.
        var oldKey = _keys.Session(oldId);
        var now = NowMs();
        var read = await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.BeginMove, [state.Key], [state.Now]),
            (Key: oldKey, Now: now),
            cancellationToken).ConfigureAwait(false);
        if (read.IsNull)
        {
            return false;
        }

        var hash = (RedisResult[])read!;
        var snapshot = ReadSnapshot(oldId, hash);
        var args = new List<RedisValue>(hash.Length + 2) { now, TtlMs(snapshot, now) };
        for (var i = 0; i < hash.Length; i += 2)
        {
            var field = (RedisValue)hash[i];
            if (field != RedisKeys.Moving)
            {
                args.Add(field);
                args.Add((RedisValue)hash[i + 1]);
            }
        }

        // The index learns the new id before the session exists, so the session is never unlisted;
        // readers of the index check each id against its hash anyway.
        if (snapshot.Principal is { } principal)
        {
            await UpdateIndexAsync(principal, ["a", newId, ToMs(snapshot.AbsoluteExpiresAt)], cancellationToken).ConfigureAwait(false);
        }

        var created = (int)await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.Create, [state.Key], state.Args),
            (Key: _keys.Session(newId), Args: args.ToArray()),
            cancellationToken).ConfigureAwait(false);
        if (created == 0)
        {
            await RunAsync(
                (db, key) => db.ScriptEvaluateAsync(RedisScripts.AbortMove, [key]),
                oldKey,
                cancellationToken).ConfigureAwait(false);
            return false;
        }

        await RunAsync((db, key) => db.KeyDeleteAsync(key), oldKey, cancellationToken).ConfigureAwait(false);
        if (snapshot.Principal is { } boundTo)
        {
            await UpdateIndexAsync(boundTo, ["r", oldId], cancellationToken).ConfigureAwait(false);
        }

        return true;
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
        _options.Limits.ValidateAttribute(name, replacement);

        RedisValue[] args =
        [
            NowMs(),
            RedisKeys.AttributeField(name),
            expected is null ? "0" : "1",
            expected is { } e ? e : RedisValue.EmptyString,
            replacement is null ? "0" : "1",
            replacement ?? RedisValue.EmptyString,
            _options.Limits.MaxAttributes,
        ];
        var result = (RedisResult[])(await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.CompareAndSet, [state.Key], state.Args),
            (Key: _keys.Session(id), Args: args),
            cancellationToken).ConfigureAwait(false))!;
        return (int)result[0] switch
        {
            1 => AttributeCasResult.Succeeded,
            0 => AttributeCasResult.Gone,
            -1 => throw TooManyAttributes((int)result[1]),
            _ => AttributeCasResult.Mismatch((int)result[1] == 1 ? (byte[]?)result[2] : null),
        };
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var now = NowMs();
        var ids = await RunAsync(
            (db, state) => db.SortedSetRangeByScoreAsync(state.Key, state.Now, double.PositiveInfinity, Exclude.Start),
            (Key: _keys.Principal(principal), Now: (double)now),
            cancellationToken).ConfigureAwait(false);
        if (ids.Length == 0)
        {
            return [];
        }

        // One read per listed id, all in flight at once (each is a single-slot command). The session
        // hash is the truth; the index is only a hint, so stale entries are dropped here.
        var hashes = await RunAsync(
            (db, state) => Task.WhenAll(state.Ids.Select(id => db.HashGetAllAsync(state.Keys.Session((string)id!)))),
            (Keys: _keys, Ids: ids),
            cancellationToken).ConfigureAwait(false);
        var found = new List<SessionSnapshot>(ids.Length);
        var stale = new List<RedisValue>();
        var clock = _time.GetUtcNow();
        for (var i = 0; i < ids.Length; i++)
        {
            var snapshot = hashes[i].Length == 0 ? null : TryReadSnapshot((string)ids[i]!, hashes[i]);
            if (snapshot is not null && !snapshot.IsExpiredAt(clock) && string.Equals(snapshot.Principal, principal, StringComparison.Ordinal))
            {
                found.Add(snapshot);
            }
            else if (snapshot is null || !IsMoving(hashes[i]))
            {
                stale.Add("r");
                stale.Add(ids[i]);
            }
        }

        if (stale.Count > 0)
        {
            await UpdateIndexAsync(principal, [.. stale], cancellationToken).ConfigureAwait(false);
        }

        return found;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Cost: a SCAN of every master for this store's session keys (O(keys in the database), in pages
    /// of 1,000), then one pipelined HMGET per session found to leave out sessions that expired by the
    /// store's clock or are mid-move. Meant for dashboards and tests, not for every request.
    /// </remarks>
    public async ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
    {
        var now = NowMs();
        return await RunAsync(
            async (db, state) =>
            {
                long count = 0;
                var pattern = state.Keys.SessionPattern;
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    var batch = new List<Task<RedisValue[]>>();
                    await foreach (var key in server.KeysAsync(db.Database, pattern, pageSize: 1000).ConfigureAwait(false))
                    {
                        batch.Add(db.HashGetAsync(key, RedisKeys.CountFields));
                    }

                    foreach (var fields in await Task.WhenAll(batch).ConfigureAwait(false))
                    {
                        if (IsLive(fields, state.Now))
                        {
                            count++;
                        }
                    }
                }

                return count;
            },
            (Keys: _keys, Now: now),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Disposes the multiplexer when the store created it from <see cref="RedisSessionStoreOptions.Configuration"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsMultiplexer && _multiplexer is { } multiplexer)
        {
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }

        _connectLock.Dispose();
    }

    /// <summary>The multiplexer, connecting it on first use.</summary>
    internal async Task<IConnectionMultiplexer> ConnectAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_multiplexer is null)
            {
                if (_options.ConnectionMultiplexerFactory is { } factory)
                {
                    _multiplexer = await factory().ConfigureAwait(false);
                }
                else
                {
                    var configuration = ConfigurationOptions.Parse(_options.Configuration!);

                    // Stay up while Redis is down: commands fail fast with our typed error and the
                    // multiplexer reconnects in the background when the server is back.
                    configuration.AbortOnConnectFail = false;
                    var timeoutMs = (int)_options.OperationTimeout.TotalMilliseconds;
                    configuration.AsyncTimeout = timeoutMs;
                    configuration.SyncTimeout = timeoutMs;
                    configuration.ConnectTimeout = Math.Min(configuration.ConnectTimeout, timeoutMs);
                    _multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false);
                }
            }

            return _multiplexer;
        }
        finally
        {
            _connectLock.Release();
        }
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
        };
    }

    private async ValueTask<bool> CreateSlowAsync(SessionSnapshot session, CancellationToken cancellationToken)
    {
        var now = NowMs();
        var args = new List<RedisValue>(12 + (2 * session.Attributes.Count))
        {
            now,
            TtlMs(session, now),
            RedisKeys.Created, ToMs(session.CreatedAt),
            RedisKeys.Access, ToMs(session.LastAccessedAt),
            RedisKeys.Idle, (long)session.IdleTimeout.TotalMilliseconds,
            RedisKeys.Absolute, ToMs(session.AbsoluteExpiresAt),
            RedisKeys.Version, session.Version,
        };
        if (session.Principal is { } principal)
        {
            args.Add(RedisKeys.PrincipalField);
            args.Add(principal);

            // Listed before it exists, so a crash between the two calls cannot leave it unlisted.
            await UpdateIndexAsync(principal, ["a", session.Id, ToMs(session.AbsoluteExpiresAt)], cancellationToken).ConfigureAwait(false);
        }

        foreach (var (name, value) in session.Attributes)
        {
            args.Add(RedisKeys.AttributeField(name));
            args.Add(value);
        }

        var created = await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.Create, [state.Key], state.Args),
            (Key: _keys.Session(session.Id), Args: args.ToArray()),
            cancellationToken).ConfigureAwait(false);
        return (int)created == 1;
    }

    private async ValueTask MovePrincipalAsync(string id, string? oldPrincipal, string? newPrincipal, long absoluteMs, CancellationToken cancellationToken)
    {
        var add = newPrincipal is null
            ? Task.CompletedTask
            : UpdateIndexAsync(newPrincipal, ["a", id, absoluteMs], cancellationToken).AsTask();
        var remove = oldPrincipal is null || string.Equals(oldPrincipal, newPrincipal, StringComparison.Ordinal)
            ? Task.CompletedTask
            : UpdateIndexAsync(oldPrincipal, ["r", id], cancellationToken).AsTask();
        await Task.WhenAll(add, remove).ConfigureAwait(false);
    }

    private async ValueTask UpdateIndexAsync(string principal, RedisValue[] operations, CancellationToken cancellationToken)
    {
        var args = new RedisValue[operations.Length + 1];
        args[0] = NowMs();
        operations.CopyTo(args, 1);
        await RunAsync(
            (db, state) => db.ScriptEvaluateAsync(RedisScripts.Index, [state.Key], state.Args),
            (Key: _keys.Principal(principal), Args: args),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs one store call with the operation timeout, mapping every way Redis can be unreachable
    /// to <see cref="SessionStoreUnavailableException"/>. The caller's own cancellation stays an
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    private async ValueTask<TResult> RunAsync<TState, TResult>(Func<IDatabase, TState, Task<TResult>> operation, TState state, CancellationToken cancellationToken)
    {
        Task<TResult>? pending = null;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var multiplexer = _multiplexer ?? await ConnectAsync(cancellationToken).WaitAsync(_options.OperationTimeout, cancellationToken).ConfigureAwait(false);
            pending = operation(multiplexer.GetDatabase(), state);
            return await pending.WaitAsync(_options.OperationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsUnavailable(ex) && !cancellationToken.IsCancellationRequested)
        {
            // A timed-out command may still fail later; observe it so it is not reported as unobserved.
            _ = pending?.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            LogUnavailable(_logger, ex.GetType().Name);
            throw new SessionStoreUnavailableException(
                $"The Redis session store did not answer within {_options.OperationTimeout.TotalMilliseconds:0} ms ({ex.GetType().Name}: {ex.Message}). Check that Redis is running and reachable; the request must not continue without its session.",
                ex);
        }
    }

    private static bool IsUnavailable(Exception ex) => ex switch
    {
        TimeoutException or RedisConnectionException => true,
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal),
        _ => false,
    };

    private SessionLimitExceededException TooManyAttributes(int count)
        => new($"A session may hold at most {_options.Limits.MaxAttributes} attributes, this change would leave {count}: remove attributes or raise SessionLimits.MaxAttributes.");

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long ToMs(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static long TtlMs(SessionSnapshot session, long nowMs) => Math.Max(1, ToMs(session.ExpiresAt) - nowMs);

    private static bool IsLive(RedisValue[] fields, long nowMs)
    {
        // fields: last access, idle, absolute, moving (RedisKeys.CountFields).
        if (!fields[3].IsNull || !fields[0].TryParse(out long access) || !fields[1].TryParse(out long idle) || !fields[2].TryParse(out long absolute))
        {
            return false;
        }

        return nowMs < Math.Min(access + idle, absolute);
    }

    private static bool IsMoving(HashEntry[] hash)
    {
        foreach (var entry in hash)
        {
            if (entry.Name == RedisKeys.Moving)
            {
                return true;
            }
        }

        return false;
    }

    private static SessionSnapshot ReadSnapshot(string id, RedisResult[] flat)
    {
        var entries = new HashEntry[flat.Length / 2];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = new HashEntry((RedisValue)flat[2 * i], (RedisValue)flat[(2 * i) + 1]);
        }

        return TryReadSnapshot(id, entries)
            ?? throw new InvalidOperationException("The session script returned a hash without its metadata; the Redis data was changed by something other than this store.");
    }

    private static SessionSnapshot? TryReadSnapshot(string id, HashEntry[] hash)
    {
        long? created = null, access = null, idle = null, absolute = null;
        long version = 0;
        string? principal = null;
        var moving = false;
        var attributes = new Dictionary<string, byte[]>(hash.Length, StringComparer.Ordinal);
        foreach (var entry in hash)
        {
            var field = (byte[])entry.Name!;
            if (field.Length > 0 && field[0] == RedisKeys.AttributeMarker)
            {
                attributes[Encoding.UTF8.GetString(field.AsSpan(1))] = (byte[])entry.Value!;
                continue;
            }

            var name = Encoding.ASCII.GetString(field);
            switch (name)
            {
                case RedisKeys.Created: created = (long)entry.Value; break;
                case RedisKeys.Access: access = (long)entry.Value; break;
                case RedisKeys.Idle: idle = (long)entry.Value; break;
                case RedisKeys.Absolute: absolute = (long)entry.Value; break;
                case RedisKeys.Version: version = (long)entry.Value; break;
                case RedisKeys.PrincipalField: principal = entry.Value; break;
                case RedisKeys.Moving: moving = true; break;
            }
        }

        if (created is null || access is null || idle is not > 0 || absolute is null || moving)
        {
            return null;
        }

        return new SessionSnapshot(
            id,
            DateTimeOffset.FromUnixTimeMilliseconds(created.Value),
            DateTimeOffset.FromUnixTimeMilliseconds(access.Value),
            TimeSpan.FromMilliseconds(idle.Value),
            DateTimeOffset.FromUnixTimeMilliseconds(absolute.Value),
            principal,
            version,
            attributes);
    }

    [LoggerMessage(EventId = RedisLogEvents.StoreUnavailable, Level = LogLevel.Warning, Message = "Redis session store unavailable: {ErrorType}")]
    private static partial void LogUnavailable(ILogger logger, string errorType);
}
