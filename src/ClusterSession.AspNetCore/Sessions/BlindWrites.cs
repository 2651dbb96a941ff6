namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// Writes recorded for a session that arrived with an id but was not read: a write-only request then costs
/// one save and no load. Replayed onto the session when a later read in the request loads it.
/// </summary>
internal sealed class BlindWrites
{
    // Null value: removed.
    private readonly Dictionary<string, byte[]?> _writes = new(StringComparer.Ordinal);

    public void Set(string name, byte[] value) => _writes[name] = value;

    public void Remove(string name) => _writes[name] = null;

    /// <summary>The writes as one change set for <paramref name="id"/>.</summary>
    public SessionChanges ToChanges(string id)
    {
        var set = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (var (name, value) in _writes)
        {
            if (value is null)
            {
                removed.Add(name);
            }
            else
            {
                set[name] = value;
            }
        }

        return new SessionChanges(id, set, removed);
    }

    /// <summary>Applies the writes to the loaded (or new) session: removals first, so the count check sees the smallest set.</summary>
    /// <exception cref="SessionLimitExceededException">The writes leave more attributes than allowed.</exception>
    public void ReplayOnto(TrackedSession session)
    {
        foreach (var (name, value) in _writes)
        {
            if (value is null)
            {
                session.Remove(name);
            }
        }

        foreach (var (name, value) in _writes)
        {
            if (value is not null)
            {
                session.Set(name, value);
            }
        }
    }
}
