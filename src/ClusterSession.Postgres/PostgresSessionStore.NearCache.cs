using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using ClusterSession.Caching;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The near cache (<see cref="PostgresSessionStoreOptions.NearCache"/>): the core's <see cref="NearCachedSessionStore"/>
/// layer over this store's uncached operations (a <see cref="NearCacheBackingStore"/>), fed by this store's LISTEN connection
/// (<see cref="PostgresNearChannel"/>): this node's copies of sessions, kept only while it LISTENs to the tables'
/// notification channel. Every statement that changes a session calls <c>pg_notify</c> in the
/// same statement (PostgresSql), so the invalidation is sent when the change commits and never for one rolled back. One
/// connection of the data source per store LISTENs and reads notifications; when it fails it is opened again with a
/// backoff, and the cache stays off and empty until a heartbeat sent through that channel after the new LISTEN comes back.
/// </content>
public sealed partial class PostgresSessionStore
{
    private static readonly TimeSpan FirstReconnectDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(5);

    private readonly NearCachedSessionStore? _layer;
    private readonly Dictionary<int, List<OwnWrite>> _ownWrites = [];
    private TimeSpan _echoTimeout;
    private readonly string _heartbeatPrefix = "h:" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) + ":";
    private TimeSpan _listenerProbeInterval;
    private Task _listenerTask = Task.CompletedTask;

    /// <summary>The near-cache layer over this store, or null when the cache is off. For tests, which read its state.</summary>
    internal NearCachedSessionStore? NearCacheLayer => _layer;

    /// <summary>The near cache's notification channel; null when the near cache is off.</summary>
    internal string? NotificationChannel => _sql.Channel;

    /// <summary>This store instance's name on the notification channel: in its heartbeats and acknowledgements.</summary>
    private string NodeId => _heartbeatPrefix[2..^1];

    /// <summary>
    /// The <c>application_name</c> of this store's listener connection (<c>pg_stat_activity</c> shows it): the node and a
    /// tag of its channel, so that a node that starts finds the nodes already listening to the same channel
    /// (<see cref="ListNodesAsync"/>). The previous release's has no tag: those nodes acknowledge changes of no one.
    /// </summary>
    internal string ListenerApplicationName => ListenerApplicationPrefix + NodeId + " " + ChannelTag;

    private const string ListenerApplicationPrefix = "ClusterSession listener ";

    // 8 hex characters of the channel's SHA-256: application_name holds at most 63 bytes.
    private string ChannelTag => _channelTag ??= Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(_sql.Channel ?? string.Empty)))[..8];

    private string? _channelTag;

    private INearCacheListener Listener => _layer!;

    private NearCachedSessionStore CreateNearCache(PostgresSessionStoreOptions options, IMeterFactory? meterFactory)
    {
        // A listener that heard nothing (not even a heartbeat) for this long checks that its connection is still alive.
        _listenerProbeInterval = options.NearCache.HeartbeatInterval * 3;
        _echoTimeout = options.NearCache.HeartbeatInterval < options.CommandTimeout ? options.NearCache.HeartbeatInterval : options.CommandTimeout;
        return new NearCachedSessionStore(new NearCacheBackingStore(this, LoadSnapshotAsync, SaveDirectAsync, DeleteDirectAsync, ChangeIdDirectAsync, CompareAndSetDirectAsync, AdmitDirectAsync), new PostgresNearChannel(this), options.NearCache, options.TouchIntervalFraction, _timeProvider, meterFactory);
    }

    /// <summary>Starts the listener once the cache is in place (its notification handler uses it).</summary>
    private void StartListener() => _listenerTask = Task.Run(() => ListenAsync(_disposing.Token));

    private ValueTask<SessionSnapshot?> LoadThroughNearCache(NearCachedSessionStore layer, string id, CancellationToken cancellationToken)
    {
        if (!_layoutKnown)
        {
            // Copies are keyed by the layout's scheme: none is kept, nor a load begun, before the store has read it.
            return LoadAfterLayoutAsync(layer, id, cancellationToken);
        }

        return layer.LoadAsync(id, cancellationToken);
    }

    private async ValueTask<SessionSnapshot?> LoadAfterLayoutAsync(NearCachedSessionStore layer, string id, CancellationToken cancellationToken)
    {
        await RunAsync("load", true, static (_, _) => Task.FromResult(true), cancellationToken).ConfigureAwait(false);
        return await LoadThroughNearCache(layer, id, cancellationToken).ConfigureAwait(false);
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
        if (_layer is not { IsUsable: true })
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

    /// <summary>
    /// Sessions a statement ended that this node knows only by their near-cache keys (returned by the statement): their
    /// copies go. A key in the other scheme (a session of the other layout while the layouts change) cannot be matched to a
    /// copy, so every copy goes.
    /// </summary>
    private void DropCopies(IEnumerable<string> keys)
    {
        if (_layer is not { } layer)
        {
            return;
        }

        foreach (var key in keys)
        {
            if (IsNearCacheKeyForm(key))
            {
                layer.Forget(key);
            }
            else
            {
                Listener.OnChannelDown();
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

        var command = CreateCommand("SELECT pg_notify($1, $2)", Text(_sql.Channel!), Text(_heartbeatPrefix + number.ToString(CultureInfo.InvariantCulture) + "+"));
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(_disposing.Token).ConfigureAwait(false);
        }
    }

    private async Task ListenAsync(CancellationToken stopping)
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
                // heartbeats sent earlier: the layer starts the proof afresh and sends a heartbeat at once.
                Listener.OnSubscribed();
                PostgresLog.NearCacheListening(_logger, _sql.Channel!);
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
                Listener.OnChannelDown();
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

    /// <summary>100 ms, doubling up to 5 s, with up to a quarter more at random so that nodes do not reconnect in step.</summary>
    private static TimeSpan ReconnectDelay(int failures)
    {
        var delay = FirstReconnectDelay * Math.Pow(2, Math.Min(failures - 1, 10));
        var capped = delay < MaxReconnectDelay ? delay : MaxReconnectDelay;
        return capped * (1 + (Random.Shared.NextDouble() / 4));
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e) => OnNotification(e.PID, e.Payload);

    /// <summary>
    /// One payload from the channel, sent by backend <paramref name="pid"/>: "h:nonce:n" a heartbeat, "h:a:key|nonce" an
    /// acknowledgement of an end, "key:version" a change, "key" a session that ended (key: PostgresNearCacheChannel.KeyOf
    /// of the id until layout 3, the handle from then on). An acknowledgement starts with "h:" so that the previous
    /// release, which skips every heartbeat but its own, skips it too.
    /// </summary>
    internal void OnNotification(int pid, string payload)
    {
        if (payload.StartsWith("h:", StringComparison.Ordinal))
        {
            OnHeartbeatOrAcknowledgement(payload);
            return;
        }

        // The session is named by its key (PostgresNearCacheChannel.KeyOf), never by its id.
        var colon = payload.LastIndexOf(':');
        var key = colon < 0 ? payload : payload[..colon];

        // A version that does not parse cannot be compared: drop the copy whatever its version.
        var version = colon < 0 || !long.TryParse(payload.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? NearCachedSessionStore.Gone : v;
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
            // An end does not say who made it: the layer acknowledges it to every node.
            Listener.OnInvalidation(key, version, writer: null);
        }
        else
        {
            // Sent by a node on the other side of a layout change (its key scheme is not this node's): no copy can be
            // matched to it, so none may stay. Happens only while the nodes switch to layout 3.
            Listener.OnChannelDown();
        }
    }

    private void OnHeartbeatOrAcknowledgement(string payload)
    {
        const int NonceLength = 16;
        if (payload.StartsWith("h:a:", StringComparison.Ordinal))
        {
            // "h:a:" + key [":" version] "|" node.
            var bar = payload.LastIndexOf('|');
            if (bar > 4)
            {
                var colon = payload.IndexOf(':', 4);
                if (colon < 0 || colon > bar)
                {
                    Listener.OnAcknowledgement(payload[4..bar], NearCachedSessionStore.Gone, payload[(bar + 1)..]);
                }
                else if (long.TryParse(payload.AsSpan(colon + 1, bar - colon - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                {
                    Listener.OnAcknowledgement(payload[4..colon], version, payload[(bar + 1)..]);
                }
            }

            return;
        }

        // "h:" + nonce + ":" + number + "+", from this node or another (other store instances share the channel). The
        // previous release's heartbeats have no "+": those nodes acknowledge nothing, so no write waits for them.
        if (payload.Length > 4 + NonceLength && payload[2 + NonceLength] == ':' && payload[^1] == '+'
            && long.TryParse(payload.AsSpan(3 + NonceLength, payload.Length - 4 - NonceLength), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            Listener.OnHeartbeat(payload.Substring(2, NonceLength), number);
        }
    }

    /// <summary>The nodes whose listener connection to this store's channel is open now (their application_name says so).</summary>
    private async Task<IReadOnlyCollection<string>> ListNodesAsync(CancellationToken cancellationToken)
    {
        var nodes = new List<string>();
        var command = CreateCommand(
            "SELECT split_part(application_name, ' ', 3) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1 AND split_part(application_name, ' ', 4) = $2",
            Text(ListenerApplicationPrefix + "%"),
            Text(ChannelTag));
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    nodes.Add(reader.GetString(0));
                }
            }
        }

        return nodes;
    }

    /// <summary>Tells every node that this one applied <paramref name="version"/> (or the end) of the session <paramref name="key"/>.</summary>
    private async Task AcknowledgeAsync(string key, long version)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        var command = CreateCommand("SELECT pg_notify($1, $2)", Text(_sql.Channel!), Text("h:a:" + key + (version == NearCachedSessionStore.Gone ? string.Empty : ":" + version.ToString(CultureInfo.InvariantCulture)) + "|" + NodeId));
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(_disposing.Token).ConfigureAwait(false);
        }
    }

    private async Task StopNearCacheAsync()
    {
        if (_layer is { } layer)
        {
            await layer.DisposeAsync().ConfigureAwait(false);
        }

        await _listenerTask.ConfigureAwait(false);
    }

    /// <summary>The near cache's channel over this store's LISTEN connection (the listener loop above delivers to the layer).</summary>
    private sealed class PostgresNearChannel(PostgresSessionStore store) : INearCacheChannel
    {
        public string NodeId => store.NodeId;

        public string KeyOf(string id) => store.NearCacheKeyOf(id);

        public void Attach(INearCacheListener listener)
        {
            // The store's listener loop delivers to its layer, which is this listener.
        }

        public Task SendHeartbeatAsync(long number) => store.SendHeartbeatAsync(number);

        public Task AcknowledgeAsync(string key, long version, string? writer) => store.AcknowledgeAsync(key, version);

        public Task<IReadOnlyCollection<string>> ListNodesAsync(CancellationToken cancellationToken) => store.ListNodesAsync(cancellationToken);

        // A write waits for its own notification (OwnWrite.Echo) while the cache serves.
        public bool DeliversBeforeWriteReturns => true;
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

    /// <summary>The write announced <paramref name="version"/> (<see cref="NearCachedSessionStore.Gone"/>: the session ended).</summary>
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
