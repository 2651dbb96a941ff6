namespace ClusterSession;

/// <summary>
/// The argument rules of <see cref="ISessionStore"/>, the same for every store: well-formed ids, the limits,
/// and what an id change to the same id does. A store calls these before it talks to its server.
/// </summary>
public static class SessionStoreContract
{
    /// <summary>Checks a new session: a well-formed id and attributes within <paramref name="limits"/>.</summary>
    public static void CheckCreate(SessionSnapshot session, SessionLimits limits)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(limits);
        if (!SessionId.IsWellFormed(session.Id))
        {
            throw new ArgumentException($"A new session needs a well-formed id: ids are {SessionId.Length} base64url characters made by SessionId.Create().", nameof(session));
        }

        limits.Validate(session);
    }

    /// <summary>Checks a change set against <paramref name="limits"/> (its id was checked when it was made).</summary>
    public static void CheckSave(SessionChanges changes, SessionLimits limits)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(limits);
        limits.Validate(changes);
    }

    /// <summary>
    /// Checks both ids of an id change. Returns false when <paramref name="newId"/> equals <paramref name="oldId"/>:
    /// the new id is taken (by the session itself), so the store moves nothing and returns false.
    /// </summary>
    public static bool CheckChangeId(string oldId, string newId)
    {
        SessionId.ThrowIfMalformed(oldId);
        SessionId.ThrowIfMalformed(newId);
        return !string.Equals(oldId, newId, StringComparison.Ordinal);
    }

    /// <summary>Checks a compare-and-set: a well-formed id, the name, and the replacement unless it is a removal.</summary>
    public static void CheckCompareAndSet(string id, string name, byte[]? replacement, SessionLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        SessionId.ThrowIfMalformed(id);
        limits.ValidateAttribute(name, replacement);
    }

    /// <summary>
    /// Checks a claim of <see cref="ISessionEventChannel.TryClaimAsync"/>: an event id and a hold longer than zero.
    /// </summary>
    public static void CheckClaim(string eventId, TimeSpan hold)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(hold, TimeSpan.Zero);
    }

    /// <summary>Checks an admission: a well-formed id, a principal, a cap of at least 1 and a known policy.</summary>
    public static void CheckAdmit(string id, string principal, int maxSessions, SessionCapPolicy policy)
    {
        SessionId.ThrowIfMalformed(id);
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSessions, 1);
        if (!Enum.IsDefined(policy))
        {
            throw new ArgumentOutOfRangeException(nameof(policy), policy, "Unknown session cap policy.");
        }
    }
}
