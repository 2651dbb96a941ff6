using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The store's Pub/Sub side for events: the session lifecycle channel (PUBLISH on <c>{KeyPrefix}ev</c>, expiries from
/// keyevent notifications) and the older session-end events from keyspace notifications, with the server configuration
/// both need (<c>notify-keyspace-events</c>). Each subscription is its own Pub/Sub queue; a failing handler is logged and
/// never breaks the connection's message loop.
/// </summary>
internal sealed partial class RedisEventChannel(RedisConnection connection, RedisKeys keys, string keyPrefix, TimeSpan timeout, TimeProvider time, ILogger logger)
{
    /// <summary>Keyspace events (K), generic commands such as DEL (g) and expiries (x): what session-end events need.</summary>
    private const string KeyspaceFlags = "Kgx";

    /// <summary>Keyevent expiries: what the lifecycle channel needs.</summary>
    private const string ExpiryFlags = "Ex";

    /// <summary>The channel lifecycle events are published on.</summary>
    public RedisChannel Channel { get; } = RedisChannel.Literal(keyPrefix + "ev");

    /// <summary>The key of a lifecycle event's claim.</summary>
    public RedisKey ClaimKey(string eventId) => keyPrefix + "evc:" + eventId;

    /// <summary>
    /// Subscribes <paramref name="handler"/> to the lifecycle channel and to the expiries of every node the connection
    /// knows; runs inside a store operation (its deadline is <paramref name="token"/>).
    /// </summary>
    public async Task<IAsyncDisposable> SubscribeAsync(Action<SessionLifecycleEvent> handler, CancellationToken token)
    {
        var multiplexer = await connection.GetAsync(token).ConfigureAwait(false);
        foreach (var server in multiplexer.GetServers())
        {
            try
            {
                await EnableKeyspaceEventsAsync(server, ExpiryFlags).WaitAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or RedisException)
            {
                // Expiries then depend on the server's own configuration; events that nodes publish still flow.
                LogLifecycleExpiriesUnavailable(logger, ex.Message);
            }
        }

        var subscriber = multiplexer.GetSubscriber();
        var database = Math.Max(multiplexer.GetDatabase().Database, 0);
        var events = await subscriber.SubscribeAsync(Channel).WaitAsync(token).ConfigureAwait(false);
        ChannelMessageQueue expiries;
        try
        {
            // A keyevent channel is a multi-node channel: on Redis Cluster StackExchange.Redis subscribes to it on every node,
            // since each node reports only the expiries of its own keys.
            expiries = await subscriber.SubscribeAsync(RedisChannel.KeyEvent(KeyNotificationType.Expired, database)).WaitAsync(token).ConfigureAwait(false);
        }
        catch
        {
            await events.UnsubscribeAsync().ConfigureAwait(false);
            throw;
        }

        events.OnMessage(message =>
        {
            if (SessionLifecycleEvent.TryParse(message.Message, out var sessionEvent))
            {
                Deliver(handler, sessionEvent, LogLifecycleEventHandlerFailed);
            }
        });
        expiries.OnMessage(message =>
        {
            if (keys.HandleFromSessionKey((string?)message.Message ?? string.Empty) is { } handle && SessionHandle.IsWellFormed(handle))
            {
                Deliver(handler, SessionLifecycleEvent.Expired(handle, time.GetUtcNow()), LogLifecycleEventHandlerFailed);
            }
        });
        return new Subscription(events, expiries);
    }

    /// <summary>See <see cref="RedisSessionStore.SubscribeToSessionEndsAsync"/>.</summary>
    public async Task<IAsyncDisposable> SubscribeToSessionEndsAsync(Action<SessionEndedEvent> handler, bool configureServer, CancellationToken cancellationToken)
    {
        // One deadline for the whole subscription attempt, as for every store operation.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var multiplexer = await connection.GetAsync(deadline.Token).ConfigureAwait(false);
        var servers = multiplexer.GetServers().Where(s => !s.IsReplica).ToArray();
        if (servers.Any(s => s.ServerType == ServerType.Cluster))
        {
            throw new NotSupportedException(
                "Session end events are not supported on Redis Cluster: each node publishes keyspace notifications only to its own subscribers. Use a standalone Redis or Garnet for events; the store works on a cluster without them.");
        }

        var database = multiplexer.GetDatabase().Database;
        if (configureServer)
        {
            foreach (var server in servers)
            {
                await EnableKeyspaceEventsAsync(server, KeyspaceFlags).WaitAsync(deadline.Token).ConfigureAwait(false);
            }

            LogKeyspaceEventsConfigured(logger, servers.Length);
        }

        // Both layouts' session keys (P s3:{...} and, until the upgrade finished, P s:{...}); OnKeyspaceEvent keeps only those.
        var channel = RedisChannel.Pattern($"__keyspace@{Math.Max(database, 0)}__:{keys.AnySessionPattern}");
        var subscriber = multiplexer.GetSubscriber();
        var queue = await subscriber.SubscribeAsync(channel).WaitAsync(deadline.Token).ConfigureAwait(false);
        queue.OnMessage(message => OnKeyspaceEvent(message, handler));
        return new Subscription(queue);
    }

    private static async Task EnableKeyspaceEventsAsync(IServer server, string flags)
    {
        try
        {
            var current = (await server.ConfigGetAsync("notify-keyspace-events").ConfigureAwait(false)).FirstOrDefault().Value ?? string.Empty;
            var merged = current;
            foreach (var flag in flags)
            {
                if (!merged.Contains(flag, StringComparison.Ordinal) && !(flag is not ('K' or 'E') && merged.Contains('A', StringComparison.Ordinal)))
                {
                    merged += flag;
                }
            }

            if (!string.Equals(merged, current, StringComparison.Ordinal))
            {
                await server.ConfigSetAsync("notify-keyspace-events", merged).ConfigureAwait(false);
            }
        }
        catch (RedisCommandException ex)
        {
            throw new InvalidOperationException(
                $"Session end events need CONFIG SET notify-keyspace-events, which StackExchange.Redis sends only in admin mode ({ex.Message}). " +
                $"Add \",allowAdmin=true\" to the configuration string, or set notify-keyspace-events to include \"{flags}\" on the server and subscribe with configureServer: false.",
                ex);
        }
        catch (RedisServerException ex)
        {
            throw new InvalidOperationException(
                $"Session end events need Redis keyspace notifications, but {server.EndPoint} refused CONFIG GET/SET notify-keyspace-events ({ex.Message}). " +
                $"Set notify-keyspace-events to include \"{flags}\" in the server's configuration (or your provider's settings) and subscribe with configureServer: false. The session store itself works without events.",
                ex);
        }
    }

    private void OnKeyspaceEvent(ChannelMessage message, Action<SessionEndedEvent> handler)
    {
        var reason = (string?)message.Message switch
        {
            "expired" => SessionEndReason.Expired,
            "del" => SessionEndReason.Deleted,
            _ => (SessionEndReason?)null,
        };
        var channel = (string?)message.Channel;
        var separator = channel?.IndexOf("__:", StringComparison.Ordinal) ?? -1;
        if (reason is null || separator < 0 || keys.HandleFromSessionKey(channel![(separator + 3)..]) is not { } handle)
        {
            return;
        }

        Deliver(handler, new SessionEndedEvent(handle, reason.Value), LogKeyspaceEventHandlerFailed);
    }

    private void Deliver<TEvent>(Action<TEvent> handler, TEvent sessionEvent, Action<ILogger, Exception> logFailure)
    {
        try
        {
            handler(sessionEvent);
        }
#pragma warning disable CA1031 // A failing handler must not break the Pub/Sub connection's message loop.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            logFailure(logger, ex);
        }
    }

    [LoggerMessage(EventId = RedisLogEvents.KeyspaceEventsConfigured, Level = LogLevel.Information, Message = "Enabled keyspace notifications for session end events on {ServerCount} server(s)")]
    private static partial void LogKeyspaceEventsConfigured(ILogger logger, int serverCount);

    [LoggerMessage(EventId = RedisLogEvents.KeyspaceEventHandlerFailed, Level = LogLevel.Error, Message = "A session end event handler threw")]
    private static partial void LogKeyspaceEventHandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = RedisLogEvents.LifecycleExpiriesUnavailable, Level = LogLevel.Warning, Message = "Session expiry events may be missing: {Reason}")]
    private static partial void LogLifecycleExpiriesUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = RedisLogEvents.LifecycleEventHandlerFailed, Level = LogLevel.Error, Message = "A session lifecycle event handler threw")]
    private static partial void LogLifecycleEventHandlerFailed(ILogger logger, Exception exception);

    /// <summary>Ends a subscription: unsubscribes each of its queues.</summary>
    private sealed class Subscription(params ChannelMessageQueue[] queues) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var queue in queues)
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
        }
    }
}
