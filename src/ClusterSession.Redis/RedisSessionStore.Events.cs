using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// Events (the Pub/Sub side is <see cref="RedisEventChannel"/>). The session lifecycle event channel
/// (<see cref="ISessionEventChannel"/>): events go out with PUBLISH on <c>{KeyPrefix}ev</c> (Redis Cluster forwards a
/// PUBLISH to every node, so any node's subscriber hears it), expiries come from keyevent notifications
/// (<c>notify-keyspace-events Ex</c>, heard on every node of a cluster), and a claim is a <c>SET NX PX</c> of
/// <c>{KeyPrefix}evc:{event id}</c>. And the opt-in session end events from keyspace notifications.
/// </content>
public sealed partial class RedisSessionStore : ISessionEventChannel
{
    /// <inheritdoc />
    public Task PublishAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionEvent);
        return RunAsync(
            "publish_event",
            (Store: this, Message: (RedisValue)sessionEvent.ToWireFormat()),
            static (s, token) => s.Store.CommandAsync(static (db, m) => db.PublishAsync(m.Store._events.Channel, m.Message), s, token),
            cancellationToken).AsTask();
    }

    /// <inheritdoc />
    public Task<bool> TryClaimAsync(string eventId, TimeSpan hold, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckClaim(eventId, hold);
        return RunAsync(
            "claim_event",
            (Store: this, Key: _events.ClaimKey(eventId), Hold: hold),
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
        return RunAsync("subscribe_events", (Events: _events, Handler: handler), static (s, token) => s.Events.SubscribeAsync(s.Handler, token), cancellationToken).AsTask();
    }

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
        return await _events.SubscribeToSessionEndsAsync(handler, configureServer, cancellationToken).ConfigureAwait(false);
    }
}
