using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// The session lifecycle event channel (<see cref="ISessionEventChannel"/>): events go out with PUBLISH on
/// <c>{KeyPrefix}ev</c> (Redis Cluster forwards a PUBLISH to every node, so any node's subscriber hears it), expiries come
/// from keyevent notifications (<c>notify-keyspace-events Ex</c>, heard on every node of a cluster), and a claim is a <c>SET NX PX</c> of
/// <c>{KeyPrefix}evc:{event id}</c>.
/// </content>
public sealed partial class RedisSessionStore : ISessionEventChannel
{
    private const string ExpiryFlags = "Ex";

    /// <inheritdoc />
    public Task PublishAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionEvent);
        return RunAsync(
            "publish_event",
            (Store: this, Message: (RedisValue)sessionEvent.ToWireFormat()),
            static (s, token) => s.Store.CommandAsync(static (db, m) => db.PublishAsync(m.Store.EventChannel, m.Message), s, token),
            cancellationToken).AsTask();
    }

    /// <inheritdoc />
    public Task<bool> TryClaimAsync(string eventId, TimeSpan hold, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(hold, TimeSpan.Zero);
        return RunAsync(
            "claim_event",
            (Store: this, Key: (RedisKey)(_options.KeyPrefix + "evc:" + eventId), Hold: hold),
            static (s, token) => s.Store.CommandAsync(static (db, c) => db.StringSetAsync(c.Key, 1, c.Hold, When.NotExists), s, token),
            cancellationToken).AsTask();
    }

    /// <inheritdoc />
    /// <remarks>
    /// Expiries need keyevent notifications (<c>notify-keyspace-events</c> with <c>E</c> and <c>x</c>): the store sets them
    /// with CONFIG SET when the connection allows it (<c>allowAdmin=true</c>), on every server it knows (replicas too, so a
    /// promoted replica of a Sentinel deployment reports expiries as well); otherwise they must be in the server's
    /// configuration. On Redis Cluster every node reports the expiries of its own keys, and the subscription listens on every
    /// node the connection knows.
    /// </remarks>
    public Task<IAsyncDisposable> SubscribeAsync(Action<SessionLifecycleEvent> handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return RunAsync("subscribe_events", (Store: this, Handler: handler), static (s, token) => s.Store.SubscribeCoreAsync(s.Handler, token), cancellationToken).AsTask();
    }

    private async Task<IAsyncDisposable> SubscribeCoreAsync(Action<SessionLifecycleEvent> handler, CancellationToken token)
    {
        var multiplexer = await _connection.GetAsync(token).ConfigureAwait(false);
        foreach (var server in multiplexer.GetServers())
        {
            try
            {
                await EnableKeyspaceEventsAsync(server, ExpiryFlags).WaitAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or RedisException)
            {
                // Expiries then depend on the server's own configuration; events that nodes publish still flow.
                LogLifecycleExpiriesUnavailable(_logger, ex.Message);
            }
        }

        var subscriber = multiplexer.GetSubscriber();
        var database = Math.Max(multiplexer.GetDatabase().Database, 0);
        var events = await subscriber.SubscribeAsync(EventChannel).WaitAsync(token).ConfigureAwait(false);
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
                Deliver(handler, sessionEvent);
            }
        });
        expiries.OnMessage(message =>
        {
            if (_keys.HandleFromSessionKey((string?)message.Message ?? string.Empty) is { } handle && SessionHandle.IsWellFormed(handle))
            {
                Deliver(handler, SessionLifecycleEvent.Expired(handle, _time.GetUtcNow()));
            }
        });
        return new LifecycleSubscription(events, expiries);
    }

    private RedisChannel EventChannel => RedisChannel.Literal(_options.KeyPrefix + "ev");

    private void Deliver(Action<SessionLifecycleEvent> handler, SessionLifecycleEvent sessionEvent)
    {
        try
        {
            handler(sessionEvent);
        }
#pragma warning disable CA1031 // A failing handler must not break the Pub/Sub connection's message loop.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogLifecycleEventHandlerFailed(_logger, ex);
        }
    }

    [LoggerMessage(EventId = RedisLogEvents.LifecycleExpiriesUnavailable, Level = LogLevel.Warning, Message = "Session expiry events may be missing: {Reason}")]
    private static partial void LogLifecycleExpiriesUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = RedisLogEvents.LifecycleEventHandlerFailed, Level = LogLevel.Error, Message = "A session lifecycle event handler threw")]
    private static partial void LogLifecycleEventHandlerFailed(ILogger logger, Exception exception);

    private sealed class LifecycleSubscription(ChannelMessageQueue events, ChannelMessageQueue expiries) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await events.UnsubscribeAsync().ConfigureAwait(false);
            await expiries.UnsubscribeAsync().ConfigureAwait(false);
        }
    }
}
