namespace ClusterSession.AspNetCore;

/// <summary>
/// Receives session lifecycle events (created, signed in, ended) of every node of the application. Register one or more
/// in DI (<c>services.AddSingleton&lt;ISessionLifecycleObserver, AuditLog&gt;()</c>); with none registered, a node neither
/// sends nor receives events. <see cref="ClusterSessionOptions.Events"/> chooses whether each event reaches every node or
/// one. docs/aspnetcore.md, "Session lifecycle events", says what is guaranteed.
/// </summary>
public interface ISessionLifecycleObserver
{
    /// <summary>
    /// Called once per delivered event, one event at a time per node, in the order the node received them. Delivery is at
    /// least once: the same <see cref="SessionLifecycleEvent.EventId"/> may come again. An exception is logged and the next
    /// event follows.
    /// </summary>
    /// <param name="sessionEvent">The event; it carries the session's handle, never its id.</param>
    /// <param name="cancellationToken">Cancelled when the application stops.</param>
    /// <returns>A task that completes when the event is handled.</returns>
    ValueTask OnSessionEventAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken);
}

/// <summary>Which nodes an event is delivered to.</summary>
public enum SessionEventDelivery
{
    /// <summary>Every node that listens gets every event (for example to drop a per-node cache of a signed-out user).</summary>
    EveryNode,

    /// <summary>One node handles each event (for example to write an audit log once); the nodes claim events through the store.</summary>
    OneNode,
}

/// <summary>Session lifecycle events (<see cref="ISessionLifecycleObserver"/>).</summary>
public sealed class SessionLifecycleEventOptions
{
    /// <summary>Whether each event reaches every node or one. Default <see cref="SessionEventDelivery.EveryNode"/>.</summary>
    public SessionEventDelivery Delivery { get; set; } = SessionEventDelivery.EveryNode;

    /// <summary>
    /// With <see cref="SessionEventDelivery.OneNode"/>, how long the store keeps a node's claim of an event, so that no other
    /// node handles it meanwhile. Default 10 minutes; at least 1 second.
    /// </summary>
    public TimeSpan ClaimHold { get; set; } = TimeSpan.FromMinutes(10);
}
