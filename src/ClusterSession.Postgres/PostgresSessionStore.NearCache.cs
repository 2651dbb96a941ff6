using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using ClusterSession.Caching;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The near cache (<see cref="PostgresSessionStoreOptions.NearCache"/>): this node's copies of sessions, kept only while
/// it LISTENs to the tables' notification channel. Every statement that changes a session calls <c>pg_notify</c> in the
/// same statement (PostgresSql), so the invalidation is sent when the change commits and never for one rolled back. One
/// connection of the data source per store LISTENs and reads notifications; when it fails it is opened again with a
/// backoff, and the cache stays off and empty until a heartbeat sent through that channel after the new LISTEN comes back.
/// </content>
public sealed partial class PostgresSessionStore
{
    /// <summary>The most last-access refreshes of cached sessions in flight at once; past it, a due refresh waits for the next hit.</summary>
    private const int MaxTouchesInFlight = 64;

    private static readonly TimeSpan FirstReconnectDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(5);

    private readonly NearCache? _nearCache;
    private readonly Dictionary<int, List<OwnWrite>> _ownWrites = [];
    private TimeSpan _echoTimeout;
    private readonly string _heartbeatPrefix = "h:" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) + ":";
    private TimeSpan _listenerProbeInterval;
    private Task _listenerTask = Task.CompletedTask;
    private int _touchesInFlight;

    /// <summary>The near cache's notification channel; null when the near cache is off.</summary>
    internal string? NotificationChannel => _sql.Channel;

    /// <summary>The <c>application_name</c> of this store's listener connection (<c>pg_stat_activity</c> shows it).</summary>
    internal string ListenerApplicationName => "ClusterSession listener " + _heartbeatPrefix[2..^1];

    /// <summary>Whether the near cache serves copies now (false when it is off).</summary>
    internal bool NearCacheUsable => _nearCache?.IsUsable ?? false;

    /// <summary>The number of sessions the near cache holds.</summary>
    internal int NearCacheCount => _nearCache?.Count ?? 0;

    /// <summary>The near cache's copy of a session, if it would serve one now (tests look with it, without loading).</summary>
    internal SessionSnapshot? NearCacheCopy(string id) => _nearCache is { } cache && cache.TryGet(id, out var copy, out _) ? copy : null;

    private NearCache CreateNearCache(PostgresSessionStoreOptions options, IMeterFactory? meterFactory)
    {
        // A listener that heard nothing (not even a heartbeat) for this long checks that its connection is still alive.
        _listenerProbeInterval = options.NearCache.HeartbeatInterval * 3;
        _echoTimeout = options.NearCache.HeartbeatInterval < options.CommandTimeout ? options.NearCache.HeartbeatInterval : options.CommandTimeout;
        return new NearCache(options.NearCache, options.TouchIntervalFraction, _timeProvider, SendHeartbeatAsync, NearCacheKeyOf, meterFactory);
    }

    /// <summary>Starts the listener once the cache is in place (its notification handler uses it).</summary>
    private void StartListener(NearCache cache) => _listenerTask = Task.Run(() => ListenAsync(cache, _disposing.Token));

    private ValueTask<SessionSnapshot?> LoadThroughNearCache(NearCache cache, string id, CancellationToken cancellationToken)
    {
        if (!_layoutKnown)
        {
            // Copies are keyed by the layout's scheme: none is kept, nor a load begun, before the store has read it.
            return LoadAfterLayoutAsync(cache, id, cancellationToken);
        }

        if (cache.TryGet(id, out var cached, out var touchDue))
        {
            if (touchDue)
            {
                TouchInBackground(cache, id);
            }

            return new(cached);
        }

        return LoadAndCacheAsync(cache, id, cancellationToken);
    }

    private async ValueTask<SessionSnapshot?> LoadAfterLayoutAsync(NearCache cache, string id, CancellationToken cancellationToken)
    {
        await RunAsync("load", true, static (_, _) => Task.FromResult(true), cancellationToken).ConfigureAwait(false);
        return await LoadThroughNearCache(cache, id, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<SessionSnapshot?> LoadAndCacheAsync(NearCache cache, string id, CancellationToken cancellationToken)
    {
        var pending = cache.BeginLoad(id);
        LoadedSession loaded = default;
        try
        {
            loaded = await RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, token), cancellationToken).ConfigureAwait(false);
            return loaded.Snapshot;
        }
        finally
        {
            // Also on failure: the pending load must end. Nothing is cached then (the snapshot is null).
            cache.CompleteLoad(pending, loaded.Snapshot, loaded.StoreNow);
        }
    }

    /// <summary>
    /// The cached copy was served and its last access is due for a refresh on the store: a normal load (which touches)
    /// runs on the thread pool, at most one per session and <see cref="MaxTouchesInFlight"/> in all; its result
    /// replaces the copy, and a failure is ignored (the next hit tries again).
    /// </summary>
    private void TouchInBackground(NearCache cache, string id)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        if (Interlocked.Increment(ref _touchesInFlight) > MaxTouchesInFlight || !cache.TryBeginTouch(id))
        {
            Interlocked.Decrement(ref _touchesInFlight);
            return;
        }

        _ = Task.Run(() => TouchAsync(cache, id));
    }

    private async Task TouchAsync(NearCache cache, string id)
    {
        try
        {
            var pending = cache.BeginLoad(id);
            LoadedSession loaded = default;
            var completed = false;
            try
            {
                loaded = await RunAsync("load", (Store: this, Id: id), static (s, token) => s.Store.LoadCoreAsync(s.Id, token), _disposing.Token).ConfigureAwait(false);
                completed = true;
            }
            finally
            {
                cache.CompleteLoad(pending, loaded.Snapshot, loaded.StoreNow);
            }

            if (completed && loaded.Snapshot is null)
            {
                cache.Remove(id);
            }
        }
#pragma warning disable CA1031 // Off the request's path there is no caller to tell; the copy keeps its own bounds, the next hit tries again.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            cache.EndTouch(id);
            Interlocked.Decrement(ref _touchesInFlight);
        }
    }

    private static async ValueTask<SessionSaveResult> SaveThroughNearCacheAsync(NearCache cache, SessionChanges changes, ValueTask<SaveOutcome> saving)
    {
        var mirrored = false;
        try
        {
            var outcome = await saving.ConfigureAwait(false);
            if (outcome.Result == SessionSaveResult.Saved)
            {
                cache.Saved(changes, outcome.Version);
                mirrored = true;
            }

            return outcome.Result;
        }
        finally
        {
            if (!mirrored)
            {
                // Gone, refused or failed (it may have landed): the copy must not outlive it.
                cache.Remove(changes.Id);
            }
        }
    }

    /// <summary>
    /// Runs a write of the session named by <paramref name="keys"/> on a connection of its own (its backend's pid identifies the write's
    /// notifications) and, when the write announced a change, returns only once this store's listener has heard it back
    /// (at most <see cref="NearCacheOptions.HeartbeatInterval"/>): every listener is signalled by the same commit, so by
    /// then the other nodes have, as a rule, dropped their copies too. The listener leaves this node's copy to the writer,
    /// which mirrors the change in it or drops it. Without a working channel there is nothing to wait for.
    /// </summary>
    private async Task<T> OwnWriteAsync<TState, T>(SessionKeys keys, TState state, Func<TState, SessionKeys, OwnWrite?, CancellationToken, Task<T>> body, CancellationToken token)
    {
        if (_nearCache is not { IsUsable: true })
        {
            return await body(state, keys, null, token).ConfigureAwait(false);
        }

        // The connection goes back to the pool as soon as the write is done, not after the echo: holding it through the
        // wait starved the pool when many writes to one session queued on its row lock. A backend may then run another
        // write of this node while the first still waits, so the writes waiting on one backend are a list.
        OwnWrite write;
        int pid;
        T result;
        var connection = await _dataSource.OpenConnectionAsync(token).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            write = new OwnWrite(keys.NearCacheKey, connection);
            pid = connection.ProcessID;
            lock (_ownWrites)
            {
                if (!_ownWrites.TryGetValue(pid, out var writes))
                {
                    _ownWrites[pid] = writes = [];
                }

                writes.Add(write);
            }

            try
            {
                result = await body(state, keys, write, token).ConfigureAwait(false);
            }
            catch
            {
                Forget(pid, write);
                throw;
            }
        }

        try
        {
            if (write.IsExpecting)
            {
                // Not the caller's token: the write has landed, only its announcement is awaited.
                await write.Echo.WaitAsync(_echoTimeout, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            return result;
        }
        finally
        {
            Forget(pid, write);
        }
    }

    private void Forget(int pid, OwnWrite write)
    {
        lock (_ownWrites)
        {
            if (_ownWrites.TryGetValue(pid, out var writes) && writes.Remove(write) && writes.Count == 0)
            {
                _ownWrites.Remove(pid);
            }
        }
    }

    /// <summary>The listener stopped: writes waiting for their echo wait no longer.</summary>
    private void ReleaseOwnWrites()
    {
        lock (_ownWrites)
        {
            foreach (var write in _ownWrites.Values.SelectMany(static writes => writes))
            {
                write.Release();
            }
        }
    }

    /// <summary>This node changed or ended the session in a way its copy does not mirror: the copy goes, whatever the outcome.</summary>
    private ValueTask<T> Forgetting<T>(string id, ValueTask<T> operation)
        => _nearCache is { } cache ? ForgettingAsync(cache, id, operation) : operation;

    private static async ValueTask<T> ForgettingAsync<T>(NearCache cache, string id, ValueTask<T> operation)
    {
        try
        {
            return await operation.ConfigureAwait(false);
        }
        finally
        {
            cache.Remove(id);
        }
    }

    /// <summary>
    /// Sessions a statement ended that this node knows only by their near-cache keys (returned by the statement): their
    /// copies go. A key in the other scheme (a session of the other layout while the layouts change) cannot be matched to a
    /// copy, so every copy goes.
    /// </summary>
    private void DropCopies(IEnumerable<string> keys)
    {
        if (_nearCache is not { } cache)
        {
            return;
        }

        foreach (var key in keys)
        {
            if (IsNearCacheKeyForm(key))
            {
                cache.Invalidate(key, NearCache.Gone);
            }
            else
            {
                cache.ChannelDown();
            }
        }
    }

    /// <summary>Heartbeat <paramref name="number"/>, through the data source like any change, so that this store's listener hears it back.</summary>
    private async Task SendHeartbeatAsync(long number)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        var command = CreateCommand("SELECT pg_notify($1, $2)", Text(_sql.Channel!), Text(_heartbeatPrefix + number.ToString(CultureInfo.InvariantCulture)));
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(_disposing.Token).ConfigureAwait(false);
        }
    }

    private async Task ListenAsync(NearCache cache, CancellationToken stopping)
    {
        var failures = 0;
        while (!stopping.IsCancellationRequested)
        {
            NpgsqlConnection? connection = null;
            try
            {
                connection = await _dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                connection.Notification += OnNotification;
                await ExecuteOnListenerAsync(connection, $"SET application_name = '{ListenerApplicationName}'; LISTEN \"{_sql.Channel}\"", stopping).ConfigureAwait(false);

                // Every change committed from now on is delivered here. Loads begun earlier may have missed one, and so may
                // heartbeats sent earlier: start the proof afresh, then send a heartbeat at once rather than at the next beat.
                cache.ChannelDown();
                PostgresLog.NearCacheListening(_logger, _sql.Channel!);
                _ = SendHeartbeatQuietlyAsync(cache.NextHeartbeat());
                failures = 0;
                while (true)
                {
                    if (!await connection.WaitAsync(_listenerProbeInterval, stopping).ConfigureAwait(false))
                    {
                        // Nothing arrived, not even a heartbeat: a connection whose peer vanished stays silent, so ask it.
                        await ExecuteOnListenerAsync(connection, "SELECT 1", stopping).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Disposal stopped it.
            }
#pragma warning disable CA1031 // The listener must outlive any failure: it reports it, keeps the cache off and tries again.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failures++;
                PostgresLog.NearCacheListenerFailed(_logger, ex, _sql.Channel!, ReconnectDelay(failures));
            }
            finally
            {
                cache.ChannelDown();
                ReleaseOwnWrites();
                if (connection is not null)
                {
                    connection.Notification -= OnNotification;
                    await ReturnListenerAsync(connection).ConfigureAwait(false);
                }
            }

            if (failures > 0 && !stopping.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(ReconnectDelay(failures), stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Disposal stopped it.
                }
            }
        }
    }

    /// <summary>
    /// Closes the listener connection. A healthy one goes back to the data source's pool, so it must stop listening first:
    /// an idle pooled connection that still LISTENs would hold PostgreSQL's notification queue (and show the listener's name).
    /// </summary>
    private async Task ReturnListenerAsync(NpgsqlConnection connection)
    {
        try
        {
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await ExecuteOnListenerAsync(connection, "UNLISTEN *; RESET application_name", CancellationToken.None).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // A connection that cannot even do this is broken, and Npgsql discards broken connections.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        await connection.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ExecuteOnListenerAsync(NpgsqlConnection connection, string sql, CancellationToken stopping)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = _commandTimeoutSeconds };
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
        }
    }

    private async Task SendHeartbeatQuietlyAsync(long number)
    {
        try
        {
            await SendHeartbeatAsync(number).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A heartbeat that is not sent is what the cache's heartbeat lag detects.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>100 ms, doubling up to 5 s, with up to a quarter more at random so that nodes do not reconnect in step.</summary>
    private static TimeSpan ReconnectDelay(int failures)
    {
        var delay = FirstReconnectDelay * Math.Pow(2, Math.Min(failures - 1, 10));
        var capped = delay < MaxReconnectDelay ? delay : MaxReconnectDelay;
        return capped * (1 + (Random.Shared.NextDouble() / 4));
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e) => OnNotification(e.PID, e.Payload);

    /// <summary>
    /// One payload from the channel, sent by backend <paramref name="pid"/>: "h:nonce:n" a heartbeat, "key:version" a
    /// change, "key" a session that ended (key: PostgresNearCacheChannel.KeyOf of the id until layout 3, the handle from then on).
    /// </summary>
    internal void OnNotification(int pid, string payload)
    {
        var cache = _nearCache!;
        if (payload.StartsWith("h:", StringComparison.Ordinal))
        {
            // Other stores' heartbeats (other nodes, other store instances) share the channel: only this one's count.
            if (payload.StartsWith(_heartbeatPrefix, StringComparison.Ordinal)
                && long.TryParse(payload.AsSpan(_heartbeatPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                cache.HeartbeatReceived(number);
            }

            return;
        }

        // The session is named by its key (PostgresNearCacheChannel.KeyOf), never by its id.
        var colon = payload.LastIndexOf(':');
        var key = colon < 0 ? payload : payload[..colon];

        // A version that does not parse cannot be compared: drop the copy whatever its version.
        var version = colon < 0 || !long.TryParse(payload.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? NearCache.Gone : v;
        lock (_ownWrites)
        {
            // Sent by the backend of a write of this session this node is running: its echo. The writer handles the copy
            // (dropping it here would lose what a save can mirror), and its Saved or Remove keeps loads in flight from caching.
            if (_ownWrites.TryGetValue(pid, out var writes))
            {
                var mine = false;
                foreach (var write in writes)
                {
                    if (string.Equals(write.Key, key, StringComparison.Ordinal))
                    {
                        write.Heard(version);
                        mine = true;
                    }
                }

                if (mine)
                {
                    return;
                }
            }
        }

        if (IsNearCacheKeyForm(key))
        {
            cache.Invalidate(key, version);
        }
        else
        {
            // Sent by a node on the other side of a layout change (its key scheme is not this node's): no copy can be
            // matched to it, so none may stay. Happens only while the nodes switch to layout 3.
            cache.ChannelDown();
        }
    }

    private async Task StopNearCacheAsync()
    {
        _nearCache?.Dispose();
        await _listenerTask.ConfigureAwait(false);
    }
}

/// <summary>A write of this node in flight, on its own connection, waiting to hear its own notification.</summary>
internal sealed class OwnWrite(string key, NpgsqlConnection connection)
{
    private readonly TaskCompletionSource _echo = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _heard = -1;
    private long _expected = -1;

    /// <summary>The session's invalidation key (what its notification carries).</summary>
    public string Key { get; } = key;

    public NpgsqlConnection Connection { get; } = connection;

    /// <summary>Completes when the listener heard the version the write announced (or a later one).</summary>
    public Task Echo => _echo.Task;

    public bool IsExpecting => Volatile.Read(ref _expected) >= 0;

    /// <summary>The write announced <paramref name="version"/> (<see cref="NearCache.Gone"/>: the session ended).</summary>
    public void Expect(long version)
    {
        Interlocked.Exchange(ref _expected, version);
        if (Interlocked.Read(ref _heard) >= version)
        {
            _echo.TrySetResult();
        }
    }

    /// <summary>The listener heard <paramref name="version"/> of this write's session from this write's backend.</summary>
    public void Heard(long version)
    {
        long heard;
        do
        {
            heard = Interlocked.Read(ref _heard);
        }
        while (version > heard && Interlocked.CompareExchange(ref _heard, version, heard) != heard);

        var expected = Interlocked.Read(ref _expected);
        if (expected >= 0 && Math.Max(heard, version) >= expected)
        {
            _echo.TrySetResult();
        }
    }

    public void Release() => _echo.TrySetResult();
}

/// <summary>What a save did, and the session's new version when it was saved.</summary>
internal readonly record struct SaveOutcome(SessionSaveResult Result, long Version);
