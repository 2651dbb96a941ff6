using System.Globalization;

namespace ClusterSession;

/// <summary>What happened to a session, as a <see cref="SessionLifecycleEvent"/> reports it.</summary>
public enum SessionLifecycleEventKind
{
    /// <summary>The session was stored for the first time.</summary>
    Created,

    /// <summary>A principal signed in on the session (normally with a new id: the event carries the new id's handle).</summary>
    SignedIn,

    /// <summary>The session ended; <see cref="SessionLifecycleEvent.EndCause"/> says why.</summary>
    Ended,
}

/// <summary>Why a session ended.</summary>
public enum SessionEndCause
{
    /// <summary>The user signed out (the application invalidated the session).</summary>
    SignedOut,

    /// <summary>The application revoked the session (a session manager's revoke, or another sign-in that kept only itself).</summary>
    Revoked,

    /// <summary>The store expired the session (idle timeout or absolute lifetime).</summary>
    Expired,

    /// <summary>A sign-in of the same principal ended it to stay within the per-principal session cap.</summary>
    Capped,
}

/// <summary>
/// A session's lifecycle event: created, signed in, or ended. It names the session by its <see cref="SessionHandle"/>,
/// never by its id (an id is a bearer credential, and the store keeps none).
/// </summary>
/// <param name="EventId">
/// The event's own id, the same on every node that receives it: a delivery made more than once (at-least-once) has the
/// same id, so an observer that must act once can deduplicate by it.
/// </param>
/// <param name="Kind">What happened.</param>
/// <param name="EndCause">Why the session ended, for <see cref="SessionLifecycleEventKind.Ended"/>; null otherwise.</param>
/// <param name="Handle">The session's handle (<see cref="SessionHandle.FromId"/>).</param>
/// <param name="At">When it happened, by the clock of the node or store that saw it, to the millisecond.</param>
public sealed record SessionLifecycleEvent(string EventId, SessionLifecycleEventKind Kind, SessionEndCause? EndCause, string Handle, DateTimeOffset At)
{
    private const string Version = "1";

    /// <summary>A new event with a fresh random <see cref="EventId"/>.</summary>
    /// <param name="kind">What happened.</param>
    /// <param name="endCause">Why the session ended (for <see cref="SessionLifecycleEventKind.Ended"/> only).</param>
    /// <param name="handle">The session's handle.</param>
    /// <param name="at">When.</param>
    /// <returns>The event.</returns>
    public static SessionLifecycleEvent Create(SessionLifecycleEventKind kind, SessionEndCause? endCause, string handle, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return new(Guid.NewGuid().ToString("N"), kind, endCause, handle, at);
    }

    /// <summary>
    /// The expiry of a session as a store reports it: its <see cref="EventId"/> derives from the handle alone, so every node
    /// that hears of the same expiry makes the same event (a session expires once).
    /// </summary>
    /// <param name="handle">The session's handle.</param>
    /// <param name="at">When the store reported it.</param>
    /// <returns>The event.</returns>
    public static SessionLifecycleEvent Expired(string handle, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return new("x" + handle, SessionLifecycleEventKind.Ended, SessionEndCause.Expired, handle, at);
    }

    /// <summary>
    /// The event as one line of text for a store's channel: <c>1|event id|kind|cause|handle|unix ms</c>. It holds no
    /// session id, attribute or principal.
    /// </summary>
    /// <returns>The text.</returns>
    public string ToWireFormat()
        => string.Join(
            '|',
            Version,
            EventId,
            ((int)Kind).ToString(CultureInfo.InvariantCulture),
            EndCause is { } cause ? ((int)cause).ToString(CultureInfo.InvariantCulture) : "-",
            Handle,
            At.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));

    /// <summary>Reads <see cref="ToWireFormat"/>'s text; false for anything else (never throws).</summary>
    /// <param name="text">The text.</param>
    /// <param name="sessionEvent">The event, when the text is one.</param>
    /// <returns>Whether <paramref name="text"/> was an event.</returns>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SessionLifecycleEvent? sessionEvent)
    {
        sessionEvent = null;
        var parts = text?.Split('|');
        if (parts is not { Length: 6 } || parts[0] != Version || parts[1].Length is 0 or > 64
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var kind) || !Enum.IsDefined((SessionLifecycleEventKind)kind)
            || !SessionHandle.IsWellFormed(parts[4])
            || !long.TryParse(parts[5], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) || ms > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
        {
            return false;
        }

        SessionEndCause? cause = null;
        if (parts[3] != "-")
        {
            if (!int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var c) || !Enum.IsDefined((SessionEndCause)c))
            {
                return false;
            }

            cause = (SessionEndCause)c;
        }

        sessionEvent = new(parts[1], (SessionLifecycleEventKind)kind, cause, parts[4], DateTimeOffset.FromUnixTimeMilliseconds(ms));
        return true;
    }
}

/// <summary>
/// Implemented by a shared store that can carry session lifecycle events between the nodes that use it (Redis Pub/Sub,
/// PostgreSQL LISTEN/NOTIFY), and report the expiries it sees itself. ClusterSession.AspNetCore uses it to deliver
/// <see cref="SessionLifecycleEvent"/>s to every node or to one (docs/aspnetcore.md, "Session lifecycle events").
/// </summary>
public interface ISessionEventChannel
{
    /// <summary>Sends <paramref name="sessionEvent"/> to every node subscribed through this store (this node included).</summary>
    /// <param name="sessionEvent">The event.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes once the store accepted the event.</returns>
    Task PublishAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken = default);

    /// <summary>
    /// Calls <paramref name="handler"/> with every event published through this store, and with every session expiry the
    /// store reports (<see cref="SessionLifecycleEvent.Expired"/>), until the returned subscription is disposed. Events sent
    /// while the subscription is disconnected are lost (the store reconnects by itself).
    /// </summary>
    /// <param name="handler">Called on the store's notification thread; keep it short and never let it throw.</param>
    /// <param name="cancellationToken">Cancels the subscription attempt.</param>
    /// <returns>Disposing it ends the subscription.</returns>
    Task<IAsyncDisposable> SubscribeAsync(Action<SessionLifecycleEvent> handler, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims an event for this node: true for exactly one caller per <paramref name="eventId"/> within
    /// <paramref name="hold"/> (the store forgets the claim afterwards).
    /// </summary>
    /// <param name="eventId">The event's <see cref="SessionLifecycleEvent.EventId"/>.</param>
    /// <param name="hold">How long the claim is kept; longer than any redelivery of the same event.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether this caller holds the claim.</returns>
    Task<bool> TryClaimAsync(string eventId, TimeSpan hold, CancellationToken cancellationToken = default);
}
