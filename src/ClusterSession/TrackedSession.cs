namespace ClusterSession;

/// <summary>
/// The view of one session during one request: reads come from the loaded snapshot overlaid
/// with this request's own changes, writes are recorded as a change set. Not thread-safe, like
/// the request it belongs to.
/// </summary>
/// <remarks>
/// An application records changes and a store takes what they come to (<see cref="GetChanges"/> for a stored
/// session, <see cref="ToNewSnapshot"/> for a new one). A host integration (the ASP.NET Core middleware, or one
/// for another host) also drives the request lifecycle: it creates or saves the session at commit depending on
/// <see cref="IsNew"/>, moves it with <see cref="RenewId"/> and a store's <c>ChangeIdAsync</c>, deletes it after
/// <see cref="Invalidate"/>, and after each store write calls <see cref="AcceptChanges"/> (a save or create) or
/// <see cref="AcceptStoredValue"/> (an atomic update), so that a second commit in the same request sends only
/// what changed since.
/// </remarks>
public sealed class TrackedSession
{
    private readonly SessionLimits _limits;
    private readonly Dictionary<string, byte[]> _set = new(StringComparer.Ordinal);
    private readonly HashSet<string> _removed = new(StringComparer.Ordinal);
    private string? _principal;
    private bool _principalChanged;
    private TimeSpan? _idleTimeout;

    /// <summary>Tracks changes to an existing session loaded from a store.</summary>
    public TrackedSession(SessionSnapshot snapshot, SessionLimits? limits = null)
        : this(snapshot, isNew: false, limits)
    {
    }

    private TrackedSession(SessionSnapshot snapshot, bool isNew, SessionLimits? limits)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Snapshot = snapshot;
        IsNew = isNew;
        Id = snapshot.Id ?? throw new ArgumentException("A tracked session needs a snapshot loaded by its id; sessions found through the principal index have none.", nameof(snapshot));
        _principal = snapshot.Principal;
        _limits = limits ?? SessionLimits.Default;
    }

    /// <summary>Starts a new session that exists only in this request until it is created in a store.</summary>
    public static TrackedSession CreateNew(string id, DateTimeOffset now, TimeSpan idleTimeout, TimeSpan absoluteLifetime, SessionLimits? limits = null)
        => new(SessionSnapshot.CreateNew(id, now, idleTimeout, absoluteLifetime), isNew: true, limits);

    /// <summary>The session as loaded (or, for a new session, as started), moved on by each accepted write.</summary>
    public SessionSnapshot Snapshot { get; private set; }

    /// <summary>The session's id (the host integration may renew it within the request).</summary>
    public string Id { get; private set; }

    /// <summary>Whether the session is new in this request and not yet in a store: a commit creates it rather than saving changes.</summary>
    public bool IsNew { get; private set; }

    /// <summary>Whether <see cref="RenewId"/> was called on a stored session (whose stored id is still <see cref="Snapshot"/>'s).</summary>
    public bool IdChanged => !IsNew && !string.Equals(Id, Snapshot.Id, StringComparison.Ordinal);

    /// <summary>Whether <see cref="Invalidate"/> was called: the host deletes the stored session at commit.</summary>
    public bool IsInvalidated { get; private set; }

    /// <summary>Whether the request changed attributes, principal or timeout.</summary>
    public bool HasChanges => _set.Count > 0 || _removed.Count > 0 || _principalChanged || _idleTimeout is not null;

    /// <summary>The principal the session is bound to, including this request's change.</summary>
    public string? Principal => _principal;

    /// <summary>The idle timeout, including this request's change.</summary>
    public TimeSpan IdleTimeout => _idleTimeout ?? Snapshot.IdleTimeout;

    /// <summary>The attribute names visible to this request.</summary>
    public IEnumerable<string> Keys
    {
        get
        {
            foreach (var name in Snapshot.Attributes.Keys)
            {
                if (!_removed.Contains(name) && !_set.ContainsKey(name))
                {
                    yield return name;
                }
            }

            foreach (var name in _set.Keys)
            {
                yield return name;
            }
        }
    }

    /// <summary>The number of attributes visible to this request.</summary>
    public int Count
    {
        get
        {
            var count = _set.Count;
            foreach (var name in Snapshot.Attributes.Keys)
            {
                if (!_removed.Contains(name) && !_set.ContainsKey(name))
                {
                    count++;
                }
            }

            return count;
        }
    }

    /// <summary>Reads an attribute as this request sees it.</summary>
    public bool TryGetValue(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_set.TryGetValue(name, out value))
        {
            return true;
        }

        if (!_removed.Contains(name) && Snapshot.Attributes.TryGetValue(name, out value))
        {
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>Sets an attribute. The array is kept, not copied: do not change it afterwards.</summary>
    /// <exception cref="SessionLimitExceededException">The name, size or count is over the limits.</exception>
    public void Set(string name, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        ThrowIfInvalidated();
        _limits.ValidateName(name);
        _limits.ValidateValue(name, value);
        var isAdded = !TryGetValue(name, out _);
        if (isAdded)
        {
            _limits.ValidateCount(Count + 1);
        }

        _removed.Remove(name);
        _set[name] = value;
    }

    /// <summary>Removes an attribute; returns whether it was visible.</summary>
    public bool Remove(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfInvalidated();
        var existed = TryGetValue(name, out _);
        _set.Remove(name);
        if (Snapshot.Attributes.ContainsKey(name))
        {
            _removed.Add(name);
        }

        return existed;
    }

    /// <summary>Removes every attribute this request can see.</summary>
    public void Clear()
    {
        ThrowIfInvalidated();
        _set.Clear();
        foreach (var name in Snapshot.Attributes.Keys)
        {
            _removed.Add(name);
        }
    }

    /// <summary>Binds the session to a principal (null: anonymous).</summary>
    public void SetPrincipal(string? principal)
    {
        ThrowIfInvalidated();
        if (!string.Equals(principal, _principal, StringComparison.Ordinal))
        {
            _principal = principal;
            _principalChanged = !string.Equals(principal, Snapshot.Principal, StringComparison.Ordinal);
        }
    }

    /// <summary>Changes the idle timeout of this session.</summary>
    public void SetIdleTimeout(TimeSpan idleTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleTimeout, TimeSpan.Zero);
        ThrowIfInvalidated();
        _idleTimeout = idleTimeout == Snapshot.IdleTimeout ? null : idleTimeout;
    }

    /// <summary>
    /// Gives the session a new id, keeping its data (session fixation protection). For a stored session the host
    /// moves it in the store first (<c>ISessionStore.ChangeIdAsync</c>) and calls this once the move succeeded.
    /// </summary>
    /// <param name="newId">The new id, from <see cref="SessionId.Create"/>.</param>
    public void RenewId(string newId)
    {
        SessionId.ThrowIfMalformed(newId);
        ThrowIfInvalidated();
        if (IsNew)
        {
            Snapshot = SessionSnapshot.CreateNew(newId, Snapshot.CreatedAt, Snapshot.IdleTimeout, Snapshot.AbsoluteExpiresAt - Snapshot.CreatedAt);
        }

        Id = newId;
    }

    /// <summary>Marks the session for deletion at commit; later writes throw <see cref="InvalidOperationException"/>.</summary>
    public void Invalidate() => IsInvalidated = true;

    /// <summary>The change set to save for a stored session, addressed to <see cref="Id"/>.</summary>
    public SessionChanges GetChanges()
        => new(Id, new Dictionary<string, byte[]>(_set, StringComparer.Ordinal), [.. _removed], _principalChanged, _principal, _idleTimeout);

    /// <summary>The snapshot to create for a new session: its attributes, principal and timeouts.</summary>
    public SessionSnapshot ToNewSnapshot()
        => new(Id, Snapshot.CreatedAt, Snapshot.LastAccessedAt, IdleTimeout, Snapshot.AbsoluteExpiresAt, _principal, 0,
            new Dictionary<string, byte[]>(_set, StringComparer.Ordinal));

    /// <summary>
    /// Records that the store now holds <paramref name="value"/> (null: absent) for <paramref name="name"/>,
    /// written outside this change set (an atomic update): it becomes part of the baseline, one version on,
    /// and any pending change of that attribute is dropped.
    /// </summary>
    /// <param name="name">The attribute's name.</param>
    /// <param name="value">What the store now holds; null when the attribute is absent.</param>
    public void AcceptStoredValue(string name, byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(name);
        var attributes = new Dictionary<string, byte[]>(Snapshot.Attributes, StringComparer.Ordinal);
        if (value is null)
        {
            attributes.Remove(name);
        }
        else
        {
            attributes[name] = value;
        }

        _set.Remove(name);
        _removed.Remove(name);
        var s = Snapshot;
        Snapshot = new SessionSnapshot(s.Id, s.Handle, s.CreatedAt, s.LastAccessedAt, s.IdleTimeout, s.AbsoluteExpiresAt, s.Principal, s.Version + 1, attributes);
    }

    /// <summary>
    /// Records that the changes were written: the overlay becomes the new baseline, so a second
    /// commit in the same request sends only what changed after the first. Call it after a successful
    /// <c>ISessionStore.CreateAsync</c> of <see cref="ToNewSnapshot"/> or <c>SaveAsync</c> of <see cref="GetChanges"/>.
    /// </summary>
    public void AcceptChanges()
    {
        var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in Keys)
        {
            TryGetValue(name, out var value);
            attributes[name] = value!;
        }

        Snapshot = new SessionSnapshot(Id, Snapshot.CreatedAt, Snapshot.LastAccessedAt, IdleTimeout, Snapshot.AbsoluteExpiresAt, _principal, Snapshot.Version + 1, attributes);
        _set.Clear();
        _removed.Clear();
        _principalChanged = false;
        _idleTimeout = null;
        IsNew = false;
    }

    private void ThrowIfInvalidated()
    {
        if (IsInvalidated)
        {
            throw new InvalidOperationException("The session was invalidated in this request; start a new request to get a new session.");
        }
    }
}
