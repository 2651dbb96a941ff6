namespace ClusterSession;

/// <summary>
/// What one request changed in one existing session: the only thing a save sends to a store,
/// never the whole session. A save also counts as an access: the store refreshes the last
/// access time and the expiry.
/// </summary>
public sealed class SessionChanges
{
    private static readonly IReadOnlyDictionary<string, byte[]> NoValues = new Dictionary<string, byte[]>(0, StringComparer.Ordinal);

    /// <summary>Creates a change set.</summary>
    /// <param name="sessionId">The id of the session to change.</param>
    /// <param name="set">Attributes to set, name to serialized value.</param>
    /// <param name="removed">Attributes to remove; a name must not be in both.</param>
    /// <param name="principalChanged">Whether <paramref name="principal"/> should replace the stored principal.</param>
    /// <param name="principal">The new principal (null: anonymous), when <paramref name="principalChanged"/>.</param>
    /// <param name="idleTimeout">A new idle timeout, or null to keep the stored one.</param>
    public SessionChanges(
        string sessionId,
        IReadOnlyDictionary<string, byte[]>? set = null,
        IReadOnlyCollection<string>? removed = null,
        bool principalChanged = false,
        string? principal = null,
        TimeSpan? idleTimeout = null)
    {
        SessionId.ThrowIfMalformed(sessionId);
        if (idleTimeout is { } timeout)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero, nameof(idleTimeout));
        }

        Set = set ?? NoValues;
        Removed = removed ?? [];
        foreach (var name in Removed)
        {
            if (Set.ContainsKey(name))
            {
                throw new ArgumentException("An attribute is both set and removed in one change set: name it in one of the two only.", nameof(removed));
            }
        }

        Id = sessionId;
        PrincipalChanged = principalChanged;
        Principal = principalChanged ? principal : null;
        IdleTimeout = idleTimeout;
    }

    /// <summary>The id of the session to change.</summary>
    public string Id { get; }

    /// <summary>Attributes to set, name to serialized value.</summary>
    public IReadOnlyDictionary<string, byte[]> Set { get; }

    /// <summary>Attributes to remove.</summary>
    public IReadOnlyCollection<string> Removed { get; }

    /// <summary>Whether <see cref="Principal"/> replaces the stored principal.</summary>
    public bool PrincipalChanged { get; }

    /// <summary>The new principal when <see cref="PrincipalChanged"/>; null means anonymous.</summary>
    public string? Principal { get; }

    /// <summary>A new idle timeout, or null to keep the stored one.</summary>
    public TimeSpan? IdleTimeout { get; }

    /// <summary>Whether the change set changes nothing but the access time.</summary>
    public bool IsEmpty => Set.Count == 0 && Removed.Count == 0 && !PrincipalChanged && IdleTimeout is null;
}
