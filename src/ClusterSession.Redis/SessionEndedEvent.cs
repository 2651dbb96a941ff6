namespace ClusterSession.Redis;

/// <summary>Why a session ended, as Redis reported it.</summary>
public enum SessionEndReason
{
    /// <summary>Redis expired the session's key (its TTL ran out).</summary>
    Expired,

    /// <summary>The session's key was deleted: logout, the old id of an id change, or a session found expired by the store's clock.</summary>
    Deleted,
}

/// <summary>A session ended (<see cref="RedisSessionStore.SubscribeToSessionEndsAsync"/>).</summary>
/// <param name="Handle">The session's <see cref="ClusterSession.SessionHandle"/>: the store keeps no session ids, so the event cannot carry one.</param>
/// <param name="Reason">Why it ended.</param>
public readonly record struct SessionEndedEvent(string Handle, SessionEndReason Reason);
