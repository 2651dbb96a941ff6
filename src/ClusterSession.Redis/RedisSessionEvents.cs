using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>Why a session ended, as Redis reported it.</summary>
public enum SessionEndReason
{
    /// <summary>Redis expired the session's key (its TTL ran out).</summary>
    Expired,

    /// <summary>The session's key was deleted: logout, the old id of an id change, or a session found expired by the store's clock.</summary>
    Deleted,
}

/// <summary>A session ended.</summary>
/// <param name="Handle">The session's <see cref="ClusterSession.SessionHandle"/>: the store keeps no session ids, so the event cannot carry one.</param>
/// <param name="Reason">Why it ended.</param>
public readonly record struct SessionEndedEvent(string Handle, SessionEndReason Reason);

/// <content>Opt-in session end events from Redis keyspace notifications.</content>
public sealed partial class RedisSessionStore
{
    private const string KeyspaceFlags = "Kgx";

    /// <summary>
    /// Calls <paramref name="handler"/> when a session of this store expires or is deleted, from Redis
    /// keyspace notifications. Opt-in and best effort (Redis Pub/Sub: events published while the
    /// subscription is disconnected are lost); the store itself never depends on them.
    /// Not supported on Redis Cluster, whose nodes publish keyspace events only to their own subscribers.
    /// </summary>
    /// <param name="handler">Called on a Pub/Sub thread; keep it short and never let it throw.</param>
    /// <param name="configureServer">
    /// Whether to enable the needed flags (<c>notify-keyspace-events Kgx</c>, merged with the current ones)
    /// with CONFIG SET. Pass false when the flags are set in the server's own configuration.
    /// </param>
    /// <param name="cancellationToken">Cancels the subscription attempt.</param>
    /// <returns>Disposing it ends the subscription.</returns>
    /// <exception cref="InvalidOperationException">The server forbids CONFIG SET; the message says how to proceed.</exception>
    /// <exception cref="NotSupportedException">The server is a Redis Cluster.</exception>
    public async Task<IAsyncDisposable> SubscribeToSessionEndsAsync(Action<SessionEndedEvent> handler, bool configureServer = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);

        // One deadline for the whole subscription attempt, as for every store operation.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.OperationTimeout);
        var multiplexer = await _connection.GetAsync(deadline.Token).ConfigureAwait(false);
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

            LogKeyspaceEventsConfigured(_logger, servers.Length);
        }

        // Both layouts' session keys (P s3:{...} and, until the upgrade finished, P s:{...}); Dispatch keeps only those.
        var channel = RedisChannel.Pattern($"__keyspace@{Math.Max(database, 0)}__:{_keys.AnySessionPattern}");
        var subscriber = multiplexer.GetSubscriber();
        var queue = await subscriber.SubscribeAsync(channel).WaitAsync(deadline.Token).ConfigureAwait(false);
        queue.OnMessage(message => Dispatch(message, handler));
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

    private void Dispatch(ChannelMessage message, Action<SessionEndedEvent> handler)
    {
        var reason = (string?)message.Message switch
        {
            "expired" => SessionEndReason.Expired,
            "del" => SessionEndReason.Deleted,
            _ => (SessionEndReason?)null,
        };
        var channel = (string?)message.Channel;
        var separator = channel?.IndexOf("__:", StringComparison.Ordinal) ?? -1;
        if (reason is null || separator < 0 || _keys.HandleFromSessionKey(channel![(separator + 3)..]) is not { } handle)
        {
            return;
        }

        try
        {
            handler(new SessionEndedEvent(handle, reason.Value));
        }
#pragma warning disable CA1031 // A failing handler must not break the Pub/Sub connection's message loop.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogKeyspaceEventHandlerFailed(_logger, ex);
        }
    }

    [LoggerMessage(EventId = RedisLogEvents.KeyspaceEventsConfigured, Level = LogLevel.Information, Message = "Enabled keyspace notifications for session end events on {ServerCount} server(s)")]
    private static partial void LogKeyspaceEventsConfigured(ILogger logger, int serverCount);

    [LoggerMessage(EventId = RedisLogEvents.KeyspaceEventHandlerFailed, Level = LogLevel.Error, Message = "A session end event handler threw")]
    private static partial void LogKeyspaceEventHandlerFailed(ILogger logger, Exception exception);

    private sealed class Subscription(ChannelMessageQueue queue) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await queue.UnsubscribeAsync().ConfigureAwait(false);
    }
}
