using System.Globalization;
using System.Security.Cryptography;
using ClusterSession.Caching;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The Redis side of the near cache (docs/near-cache.md), the <see cref="INearCacheChannel"/> of
/// <see cref="NearCachedSessionStore"/>: the invalidation channel <c>&lt;KeyPrefix&gt;nc</c>, which the store's changing
/// scripts PUBLISH to, this node's subscription to it, and the heartbeats that prove it delivers.
/// Messages are handled one at a time, in the order Redis sent them, so a heartbeat that comes back proves that every
/// invalidation published before it was applied.
/// </summary>
/// <remarks>
/// The channel is subscribed twice. StackExchange.Redis writes each message into both queues on the connection's own
/// reader thread, as it arrives. The data queue is read only by <see cref="Drain"/>, under a lock, so in order: by the
/// store before every lookup in the cache (so a message that reached this process before the read is applied before
/// it, with no wait for a thread-pool hop), and by a background loop that the second queue wakes (so messages are
/// applied when no read comes).
/// </remarks>
/// <remarks>
/// Redis Cluster: the scripts use classic PUBLISH, which every node forwards to every other node over the cluster bus,
/// so one subscription on any node hears every shard; a heartbeat is sent to every master and counts only when it came
/// back from all of them (a shard whose messages stop arriving turns the cache off).
/// </remarks>
/// <remarks>
/// Messages: <c>h:&lt;nonce&gt;:&lt;n&gt;+</c> a heartbeat (<c>h:&lt;nonce&gt;:-</c>: that node stops; without the <c>+</c>, a
/// node of the previous release, which acknowledges ends only and is waited for by no write), <c>&lt;key&gt;:&lt;version&gt;</c>
/// a change, <c>&lt;key&gt;</c> an end, <c>&lt;key&gt;|&lt;writer nonce&gt;</c> an end naming its writer. Acknowledgements: of
/// an end, <c>&lt;key&gt;|&lt;nonce&gt;</c> on the writer's own channel <c>&lt;channel&gt;:&lt;writer nonce&gt;</c>; of a
/// change, <c>&lt;key&gt;:&lt;version&gt;|&lt;nonce&gt;</c> on <c>&lt;channel&gt;:a</c>, which every node hears.
/// </remarks>
internal sealed partial class RedisNearChannel : INearCacheChannel, IAsyncDisposable
{
    private const string ProbeScript = "return redis.call('PUBLISH', ARGV[1], 'p')";

    // How long the node record keeps a node that stopped sending heartbeats without saying goodbye.
    private const long ForgetNodesAfterMs = 3_600_000;
    private const int NonceLength = 16;

    // In place of a heartbeat's number: the store instance stopped (a heartbeat number never has it).
    private const string LeavingMark = "-";

    // After a heartbeat's number: the node acknowledges every invalidation (changes too). A heartbeat without it comes
    // from a node of the previous release, which acknowledges ends only: no write waits for it.
    private const string AcknowledgesMark = "+";

    // The channel every node publishes its acknowledgements of changes to (the change does not name its writer).
    private const string SharedAckSuffix = ":a";

    private readonly RedisChannel _ackChannel;
    private readonly RedisKey _nodesKey;
    private readonly long _listWithinMs;
    private readonly Func<string, string> _keyOf;
    private ChannelMessageQueue? _acks;
    private ChannelMessageQueue? _sharedAcks;
    private INearCacheListener? _listener;

    private readonly RedisChannel _channel;
    private readonly string _heartbeatPrefix;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly long _abandonAfterMs;
    private IConnectionMultiplexer? _multiplexer;
    private Task? _start;
    private readonly Lock _drainGate = new();
    private ChannelMessageQueue? _queue;
    private ChannelMessageQueue? _wake;
    private volatile bool _draining;
    private long _heartbeat;
    private int _heartbeatExpected;
    private int _heartbeatReceived;
    private long _heartbeatSentAt;
    private bool _disposed;

    /// <summary>Creates the channel; it subscribes on the store's first use (<see cref="EnsureStartedAsync"/>).</summary>
    /// <param name="channel">The channel's name.</param>
    /// <param name="heartbeatInterval">The near cache's heartbeat interval: a heartbeat not back within half of it is abandoned.</param>
    /// <param name="logger">The store's logger.</param>
    /// <param name="keyOf">The store's invalidation key of a session id (it depends on the layout).</param>
    public RedisNearChannel(string channel, TimeSpan heartbeatInterval, ILogger logger, Func<string, string> keyOf)
    {
        _abandonAfterMs = (long)Math.Max(1, heartbeatInterval.TotalMilliseconds / 2);
        _listWithinMs = (long)Math.Max(1, 4 * heartbeatInterval.TotalMilliseconds);
        NodesKey = channel + "n";
        _nodesKey = NodesKey;
        _keyOf = keyOf;
        ChannelName = channel;
        _channel = RedisChannel.Literal(channel);
        Nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(NonceLength / 2));
        _heartbeatPrefix = "h:" + Nonce + ":";
        _ackChannel = RedisChannel.Literal(AckChannelOf(Nonce));
        _logger = logger;
    }

    /// <summary>The sorted set of the nodes that sent heartbeats (score: when the last one went out, on the server's clock).</summary>
    public string NodesKey { get; }

    /// <summary>The channel the scripts publish to.</summary>
    public string ChannelName { get; }

    /// <summary>This store instance's nonce: in its heartbeats, its end announcements, and its acknowledgement channel's name.</summary>
    public string Nonce { get; }

    /// <inheritdoc />
    public string NodeId => Nonce;

    private INearCacheListener Listener => _listener ?? throw new InvalidOperationException("The near-cache channel is used before the layer attached to it.");

    /// <inheritdoc />
    public string KeyOf(string id) => _keyOf(id);

    /// <inheritdoc />
    public void Attach(INearCacheListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
    }

    /// <inheritdoc />
    public void DeliverReceived() => Drain();

    /// <summary>
    /// Subscribes on first use (once; again after a failure Redis may recover from). Throws
    /// <see cref="InvalidOperationException"/> for good when the server cannot publish from a script or refuses the channel.
    /// </summary>
    public ValueTask EnsureStartedAsync(IConnectionMultiplexer multiplexer, CancellationToken token)
    {
        var start = Volatile.Read(ref _start);
        return start is { IsCompletedSuccessfully: true } ? default : StartSlowAsync(multiplexer, token);
    }

    public async ValueTask DisposeAsync()
    {
        ChannelMessageQueue? queue, wake, acks, sharedAcks;
        IConnectionMultiplexer? leaving;
        lock (_gate)
        {
            leaving = _queue is null ? null : _multiplexer;
            _disposed = true;
            queue = _queue;
            wake = _wake;
            acks = _acks;
            sharedAcks = _sharedAcks;
            _sharedAcks = null;
            _queue = null;
            _wake = null;
            _acks = null;
            if (_multiplexer is { } multiplexer)
            {
                multiplexer.ConnectionFailed -= OnConnectionFailed;
                multiplexer.ConnectionRestored -= OnConnectionRestored;
            }
        }

        if (queue is not null && wake is not null)
        {
            try
            {
                // The other nodes stop waiting for this one's acknowledgements at once, not 3 intervals later.
                leaving?.GetDatabase().Publish(_channel, _heartbeatPrefix + LeavingMark, CommandFlags.DemandMaster | CommandFlags.FireAndForget);
                leaving?.GetDatabase().SortedSetRemove(_nodesKey, Nonce, CommandFlags.DemandMaster | CommandFlags.FireAndForget);

                await queue.UnsubscribeAsync().ConfigureAwait(false);
                await wake.UnsubscribeAsync().ConfigureAwait(false);
                if (acks is not null)
                {
                    await acks.UnsubscribeAsync().ConfigureAwait(false);
                }

                if (sharedAcks is not null)
                {
                    await sharedAcks.UnsubscribeAsync().ConfigureAwait(false);
                }
            }
#pragma warning disable CA1031 // Unsubscribing from a connection that is down or disposed leaves nothing to undo.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private async ValueTask StartSlowAsync(IConnectionMultiplexer multiplexer, CancellationToken token)
    {
        Task start;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_start is null || (_start.IsFaulted && _start.Exception?.InnerException is not InvalidOperationException))
            {
                _start = StartAsync(multiplexer);
            }

            start = _start;
        }

        await start.WaitAsync(token).ConfigureAwait(false);
    }

    private async Task StartAsync(IConnectionMultiplexer multiplexer)
    {
        // A script publishes every invalidation: check once that this server lets it (an ACL may not; Garnet 2.2.8 does),
        // so that turning the cache on against such a server fails here, with the fix, rather than on the first save.
        try
        {
            await multiplexer.GetDatabase().ScriptEvaluateAsync(ProbeScript, null, [ChannelName], CommandFlags.DemandMaster).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (!RedisFailures.NotApplied(ex))
        {
            throw new InvalidOperationException(
                $"RedisSessionStoreOptions.NearCache.Enabled is on, but the server refused PUBLISH from a Lua script ({ex.Message}). " +
                "The near cache needs it: every change publishes its invalidation inside the script that makes it. " +
                $"With a Redis ACL, allow +publish and the channels &{ChannelName} and &{ChannelName}:*; with a server that has no PUBLISH in Lua, turn NearCache.Enabled off for this store.",
                ex);
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_multiplexer is null)
            {
                _multiplexer = multiplexer;
                multiplexer.ConnectionFailed += OnConnectionFailed;
                multiplexer.ConnectionRestored += OnConnectionRestored;
            }
        }

        var subscriber = multiplexer.GetSubscriber();
        ChannelMessageQueue queue, wake, acks, sharedAcks;
        try
        {
            // The acknowledgement channel first: by the time other nodes hear this one, it hears their acknowledgements.
            acks = await subscriber.SubscribeAsync(_ackChannel, CommandFlags.DemandMaster).ConfigureAwait(false);
            sharedAcks = await subscriber.SubscribeAsync(RedisChannel.Literal(ChannelName + SharedAckSuffix), CommandFlags.DemandMaster).ConfigureAwait(false);
            queue = await subscriber.SubscribeAsync(_channel, CommandFlags.DemandMaster).ConfigureAwait(false);
            wake = await subscriber.SubscribeAsync(_channel, CommandFlags.DemandMaster).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (!RedisFailures.NotApplied(ex))
        {
            Listener.OnChannelDown();
            throw new InvalidOperationException(
                $"RedisSessionStoreOptions.NearCache.Enabled is on, but the server refused to subscribe to the near cache's channel ({ex.Message}). " +
                $"With a Redis ACL, allow +subscribe and the channels &{ChannelName} and &{ChannelName}:*; otherwise turn NearCache.Enabled off for this store.",
                ex);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The next operation tries again; until a subscription is proven, nothing is served from the cache.
            Listener.OnChannelDown();
            throw;
        }

        bool disposed;
        lock (_gate)
        {
            disposed = _disposed;
            if (!disposed)
            {
                _queue = queue;
                _wake = wake;
                _acks = acks;
                _sharedAcks = sharedAcks;
            }
        }

        if (disposed)
        {
            await queue.UnsubscribeAsync().ConfigureAwait(false);
            await wake.UnsubscribeAsync().ConfigureAwait(false);
            await acks.UnsubscribeAsync().ConfigureAwait(false);
            await sharedAcks.UnsubscribeAsync().ConfigureAwait(false);
            return;
        }

        acks.OnMessage(m => OnAck(m.Message));
        sharedAcks.OnMessage(m => OnAck(m.Message));
        wake.OnMessage(_ => Drain());

        // Loads that started before the subscription was live may have missed an invalidation: none of them is cached.
        // Loads that started before the subscription was live may have missed an invalidation: none of them is cached
        // (the layer sends a heartbeat at once, which turns the cache on when it comes back).
        Listener.OnSubscribed();
        LogSubscribed(_logger);
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        // Any connection: with RESP3 the subscription shares the interactive one, and a failure is rare enough to
        // cost a cache refill. Messages published while it was down are lost, so nothing cached may be trusted.
        _listener?.OnChannelDown();
        LogChannelDown(_logger, "connection failed", e.ConnectionType.ToString(), e.FailureType.ToString());
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        // Resubscribing: until a heartbeat sent from now on comes back, the channel is not proven, and the heartbeats of
        // nodes that started meanwhile were missed (the layer lists the nodes again once it is proven).
        _listener?.OnSubscribed();
        LogChannelDown(_logger, "connection restored, resubscribing", e.ConnectionType.ToString(), e.FailureType.ToString());
    }

    /// <summary>
    /// Applies every message that has reached this process, in order; returns at once when there is none and no other
    /// thread is applying one (so a read never passes a message that arrived before it).
    /// </summary>
    public void Drain()
    {
        if (_queue is not { } queue || (queue.TryGetCount(out var count) && count == 0 && !_draining))
        {
            return;
        }

        lock (_drainGate)
        {
            _draining = true;
            try
            {
                while (queue.TryRead(out var message))
                {
                    OnMessage(message);
                }
            }
            finally
            {
                _draining = false;
            }
        }
    }

    private void OnMessage(ChannelMessage message)
    {
        var payload = (string?)message.Message;
        if (string.IsNullOrEmpty(payload))
        {
            return;
        }

        if (payload.StartsWith("h:", StringComparison.Ordinal))
        {
            OnHeartbeat(payload);
            return;
        }

        var bar = payload.IndexOf('|', StringComparison.Ordinal);
        if (bar >= 0)
        {
            // An end whose writer waits: the layer applies it, then acknowledges it (unless this node wrote it).
            var writer = payload.AsSpan(bar + 1);
            Apply(payload[..bar], NearCachedSessionStore.Gone, IsNonce(writer) ? writer.ToString() : Nonce);
            return;
        }

        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            Apply(payload, NearCachedSessionStore.Gone, Nonce);
        }
        else if (long.TryParse(payload.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            Apply(payload[..colon], version, null);
        }
    }

    /// <summary>
    /// What an invalidation of the previous layout carries instead of the session id: the lowercase hex SHA-1 of the id,
    /// as the scripts compute it with <c>redis.sha1hex</c> from a previous-layout key (the previous release keys its
    /// copies by it; in layout 3 the handle is the key). A one-way digest of a 192-bit random id: a subscriber learns
    /// that some session changed and cannot turn it back into a cookie.
    /// </summary>
#pragma warning disable CA5350 // Not a signature or a password hash: a digest Lua can compute, of a random 192-bit id.
    internal static string Sha1KeyOf(string id) => Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(id)));
#pragma warning restore CA5350

    // An end without a writer waits for no one: it is passed on as this node's own, which the layer does not acknowledge.
    private void Apply(string key, long version, string? writer)
    {
        Listener.OnInvalidation(key, version, writer);
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            LogInvalidation(_logger, version == NearCachedSessionStore.Gone ? "gone" : version.ToString(CultureInfo.InvariantCulture));
        }
    }

    private void OnHeartbeat(string payload)
    {
        if (payload.Length > 2 + NonceLength && payload[2 + NonceLength] == ':' && IsNonce(payload.AsSpan(2, NonceLength))
            && !payload.AsSpan(2, NonceLength).SequenceEqual(Nonce))
        {
            var peer = payload.Substring(2, NonceLength);
            if (payload.AsSpan(3 + NonceLength).SequenceEqual(LeavingMark))
            {
                Listener.OnNodeLeft(peer);
            }
            else if (payload.EndsWith(AcknowledgesMark, StringComparison.Ordinal)
                && long.TryParse(payload.AsSpan(3 + NonceLength, payload.Length - 3 - NonceLength - AcknowledgesMark.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var theirs))
            {
                Listener.OnHeartbeat(peer, theirs);
            }

            return;
        }

        if (!payload.StartsWith(_heartbeatPrefix, StringComparison.Ordinal) || !payload.EndsWith(AcknowledgesMark, StringComparison.Ordinal)
            || !long.TryParse(payload.AsSpan(_heartbeatPrefix.Length, payload.Length - _heartbeatPrefix.Length - AcknowledgesMark.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return;
        }

        lock (_gate)
        {
            if (number != _heartbeat || ++_heartbeatReceived < _heartbeatExpected)
            {
                return;
            }

            _heartbeat = 0;
        }

        Listener.OnHeartbeat(Nonce, number);
    }

    private static bool IsNonce(ReadOnlySpan<char> text)
    {
        if (text.Length != NonceLength)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigitLower(c))
            {
                return false;
            }
        }

        return true;
    }

    private string AckChannelOf(string nonce) => ChannelName + ":" + nonce;

    /// <inheritdoc />
    /// <remarks>
    /// An end that names its writer is acknowledged on the writer's channel as <c>&lt;key&gt;|&lt;nonce&gt;</c> (what the
    /// previous release sends and waits for); a change, on the shared channel <c>&lt;channel&gt;:a</c> as
    /// <c>&lt;key&gt;:&lt;version&gt;|&lt;nonce&gt;</c>.
    /// </remarks>
    public Task AcknowledgeAsync(string key, long version, string? writer)
    {
        var toWriter = version == NearCachedSessionStore.Gone && writer is not null;
        var channel = RedisChannel.Literal(toWriter ? AckChannelOf(writer!) : ChannelName + SharedAckSuffix);
        var payload = version == NearCachedSessionStore.Gone
            ? key + "|" + Nonce
            : key + ":" + version.ToString(CultureInfo.InvariantCulture) + "|" + Nonce;
        IConnectionMultiplexer? multiplexer;
        lock (_gate)
        {
            multiplexer = _multiplexer;
        }

        try
        {
            multiplexer?.GetDatabase().Publish(channel, payload, CommandFlags.DemandMaster | CommandFlags.FireAndForget);
        }
#pragma warning disable CA1031 // A lost acknowledgement costs the writer one heartbeat interval, and that is counted there.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>The nodes whose last heartbeat was recorded within four intervals, on the server's clock.</remarks>
    public async Task<IReadOnlyCollection<string>> ListNodesAsync(CancellationToken cancellationToken)
    {
        IConnectionMultiplexer? multiplexer;
        lock (_gate)
        {
            multiplexer = _multiplexer;
        }

        if (multiplexer is null)
        {
            return [];
        }

        var database = multiplexer.GetDatabase();
        var serverNow = await ServerNowMsAsync(database).WaitAsync(cancellationToken).ConfigureAwait(false);
        var nodes = await database.SortedSetRangeByScoreAsync(_nodesKey, serverNow - _listWithinMs, double.PositiveInfinity, flags: CommandFlags.DemandMaster).WaitAsync(cancellationToken).ConfigureAwait(false);
        return [.. nodes.Select(static v => (string?)v).OfType<string>().Where(static n => IsNonce(n))];
    }

    // The server's clock (TIME), in Unix milliseconds.
    private static async Task<long> ServerNowMsAsync(IDatabase database)
    {
        var time = (RedisValue[]?)await database.ExecuteAsync("TIME", [], CommandFlags.DemandMaster).ConfigureAwait(false);
        return time is [var seconds, var micros] ? ((long)seconds * 1000) + ((long)micros / 1000) : throw new InvalidOperationException("The server answered TIME without seconds and microseconds.");
    }

    private void OnAck(RedisValue message)
    {
        var payload = (string?)message;
        var bar = payload?.IndexOf('|', StringComparison.Ordinal) ?? -1;
        if (payload is null || bar < 0)
        {
            return;
        }

        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || colon > bar)
        {
            Listener.OnAcknowledgement(payload[..bar], NearCachedSessionStore.Gone, payload[(bar + 1)..]);
        }
        else if (long.TryParse(payload.AsSpan(colon + 1, bar - colon - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            Listener.OnAcknowledgement(payload[..colon], version, payload[(bar + 1)..]);
        }
    }

    // Sends heartbeat N to every master (one on a standalone or Sentinel primary, one per shard on a cluster). At most one
    // heartbeat is in flight; one that has not come back within half an interval (of real time) is abandoned and the
    // next one goes out (a lost one is what the lag check catches). A test clock that jumps ahead fires many timer
    // ticks at once: they send one heartbeat.
    /// <inheritdoc />
    public async Task SendHeartbeatAsync(long number)
    {
        IConnectionMultiplexer? multiplexer;
        lock (_gate)
        {
            multiplexer = _queue is null ? null : _multiplexer;
        }

        if (multiplexer is null)
        {
            return;
        }

        var masters = multiplexer.GetServers().Where(s => s.ServerType == ServerType.Cluster && !s.IsReplica).ToArray();
        var now = Environment.TickCount64;
        lock (_gate)
        {
            // One heartbeat in flight at a time, marked before the first await: the ticks of a test clock that jumps
            // ahead, which all run now, send one.
            if (_heartbeat != 0 && now - _heartbeatSentAt < _abandonAfterMs)
            {
                return;
            }

            _heartbeat = number;
            _heartbeatExpected = Math.Max(1, masters.Length);
            _heartbeatReceived = 0;
            _heartbeatSentAt = now;
        }

        // Recorded before it is sent, on the server's clock: a node that subscribes after this heartbeat went out finds
        // this node in the record. A heartbeat that cannot be recorded is not sent (the cache turns off rather than be
        // unknown to a new node). Plain commands (the server's TIME, then ZADD), no script: 2 commands a node a second.
        var database = multiplexer.GetDatabase();
        var serverNow = await ServerNowMsAsync(database).ConfigureAwait(false);
        _ = database.SortedSetRemoveRangeByScoreAsync(_nodesKey, double.NegativeInfinity, serverNow - ForgetNodesAfterMs, flags: CommandFlags.DemandMaster | CommandFlags.FireAndForget);
        await database.SortedSetAddAsync(_nodesKey, Nonce, serverNow, CommandFlags.DemandMaster).ConfigureAwait(false);
        _ = database.ExecuteAsync("PEXPIRE", [_nodesKey, ForgetNodesAfterMs], CommandFlags.DemandMaster | CommandFlags.FireAndForget);
        var payload = _heartbeatPrefix + number.ToString(CultureInfo.InvariantCulture) + AcknowledgesMark;
        if (masters.Length == 0)
        {
            await database.PublishAsync(_channel, payload, CommandFlags.DemandMaster).ConfigureAwait(false);
            return;
        }

        await Task.WhenAll(masters.Select(m => m.ExecuteAsync("PUBLISH", [ChannelName, payload]))).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = RedisLogEvents.NearCacheSubscribed, Level = LogLevel.Information, Message = "Near cache subscribed to its invalidation channel; it serves copies once a heartbeat comes back")]
    private static partial void LogSubscribed(ILogger logger);

    [LoggerMessage(EventId = RedisLogEvents.NearCacheChannelDown, Level = LogLevel.Warning, Message = "Near cache emptied and bypassed ({Reason}, {ConnectionType} connection, {FailureType}) until a heartbeat comes back")]
    private static partial void LogChannelDown(ILogger logger, string reason, string connectionType, string failureType);

    [LoggerMessage(EventId = RedisLogEvents.NearCacheInvalidation, Level = LogLevel.Trace, Message = "Near cache applied an invalidation (version {Version})")]
    private static partial void LogInvalidation(ILogger logger, string version);
}
