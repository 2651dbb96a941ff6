namespace ClusterSession.InMemory;

/// <summary>
/// A session store in this process's memory: the embedded default for a single server, and the
/// reference implementation of the <see cref="ISessionStore"/> contract. Thread-safe. Expiry is
/// enforced on every read and by a background sweep that examines at most
/// <see cref="InMemorySessionStoreOptions.SweepBatchSize"/> sessions per
/// <see cref="InMemorySessionStoreOptions.SweepInterval"/>, driven by the given <see cref="TimeProvider"/>.
/// Dispose the store to stop the sweep.
/// </summary>
/// <remarks>
/// Returned snapshots share their attribute arrays with the store: treat them as read-only,
/// as <see cref="SessionSnapshot"/> documents.
/// </remarks>
public sealed class InMemorySessionStore : ISessionStore, IDisposable, IAsyncDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Entry> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _principals = new(StringComparer.Ordinal);
    private readonly Lock _principalsGate = new();
    private readonly Lock[] _admissionGates = [.. Enumerable.Range(0, 32).Select(static _ => new Lock())];
    private readonly TimeProvider _time;
    private readonly SessionLimits _limits;
    private readonly double _touchFraction;
    private readonly int _sweepBatchSize;
    private readonly ITimer _sweepTimer;
    private IEnumerator<KeyValuePair<string, Entry>>? _sweepCursor;
    private int _sweeping;

    /// <summary>Creates an empty store.</summary>
    /// <param name="options">The options; null for the defaults.</param>
    /// <param name="timeProvider">The clock; null for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid; the message names each invalid option.</exception>
    public InMemorySessionStore(InMemorySessionStoreOptions? options = null, TimeProvider? timeProvider = null)
    {
        options ??= new InMemorySessionStoreOptions();
        options.ThrowIfInvalid();

        _time = timeProvider ?? TimeProvider.System;
        _limits = options.Limits;
        _touchFraction = options.TouchIntervalFraction;
        _sweepBatchSize = options.SweepBatchSize;

        // The timer holds the store weakly, so an undisposed store can still be collected (and its timer with it).
        var self = new WeakReference<InMemorySessionStore>(this);
        _sweepTimer = _time.CreateTimer(
            static state =>
            {
                if (((WeakReference<InMemorySessionStore>)state!).TryGetTarget(out var store))
                {
                    store.Sweep();
                }
            },
            self,
            options.SweepInterval,
            options.SweepInterval);
    }

    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCreate(session, _limits);
        cancellationToken.ThrowIfCancellationRequested();

        var stored = new SessionSnapshot(
            null, session.Handle, session.CreatedAt, session.LastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt,
            session.Principal, session.Version, CopyAttributes(session.Attributes));
        var entry = new Entry(stored);
        var now = _time.GetUtcNow();

        // The entry is locked before it is published, so nobody sees it before it is indexed.
        lock (entry.Gate)
        {
            while (!_sessions.TryAdd(stored.Handle, entry))
            {
                if (_sessions.TryGetValue(stored.Handle, out var existing) && !TryRemoveIfDead(existing, now))
                {
                    return ValueTask.FromResult(false);
                }
            }

            IndexAdd(stored.Principal, stored.Handle);
        }

        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
        => LoadAsync(id, SessionLoadOptions.None, cancellationToken);

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
    {
        var touch = (options & SessionLoadOptions.NoTouch) == 0;
        SessionId.ThrowIfMalformed(id);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_sessions.TryGetValue(SessionHandle.FromId(id), out var entry))
        {
            return ValueTask.FromResult<SessionSnapshot?>(null);
        }

        var now = _time.GetUtcNow();

        // Most loads need no refresh (throttled touch) and take no lock.
        var current = entry.Current;
        if (!entry.Removed && !current.IsExpiredAt(now) && !(touch && NeedsTouch(current, now)))
        {
            return ValueTask.FromResult<SessionSnapshot?>(WithId(current, id));
        }

        lock (entry.Gate)
        {
            if (!IsLiveLocked(entry, now))
            {
                return ValueTask.FromResult<SessionSnapshot?>(null);
            }

            current = entry.Current;
            if (touch && NeedsTouch(current, now))
            {
                current = With(current, now, current.Version, current.Principal, current.IdleTimeout, current.Attributes);
                entry.Current = current;
            }

            return ValueTask.FromResult<SessionSnapshot?>(WithId(current, id));
        }
    }

    /// <inheritdoc />
    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckSave(changes, _limits);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_sessions.TryGetValue(SessionHandle.FromId(changes.Id), out var entry))
        {
            return ValueTask.FromResult(SessionSaveResult.Gone);
        }

        var now = _time.GetUtcNow();
        lock (entry.Gate)
        {
            if (!IsLiveLocked(entry, now))
            {
                return ValueTask.FromResult(SessionSaveResult.Gone);
            }

            var current = entry.Current;
            var attributes = current.Attributes;
            if (changes.Set.Count > 0 || changes.Removed.Count > 0)
            {
                var changed = new Dictionary<string, byte[]>(current.Attributes, StringComparer.Ordinal);
                foreach (var name in changes.Removed)
                {
                    changed.Remove(name);
                }

                foreach (var (name, value) in changes.Set)
                {
                    changed[name] = (byte[])value.Clone();
                }

                ValidateCountGrowth(current.Attributes.Count, changed.Count);
                attributes = changed;
            }

            var principal = changes.PrincipalChanged ? changes.Principal : current.Principal;
            entry.Current = With(current, now, current.Version + 1, principal, changes.IdleTimeout ?? current.IdleTimeout, attributes);
            if (!string.Equals(principal, current.Principal, StringComparison.Ordinal))
            {
                IndexMove(current.Principal, principal, current.Handle);
            }
        }

        return ValueTask.FromResult(SessionSaveResult.Saved);
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_sessions.TryGetValue(SessionHandle.FromId(id), out var entry))
        {
            return ValueTask.FromResult(false);
        }

        var now = _time.GetUtcNow();
        lock (entry.Gate)
        {
            if (entry.Removed)
            {
                return ValueTask.FromResult(false);
            }

            var wasLive = !entry.Current.IsExpiredAt(now);
            RemoveLocked(entry);
            return ValueTask.FromResult(wasLive);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!SessionStoreContract.CheckChangeId(oldId, newId))
        {
            return ValueTask.FromResult(false);
        }

        var now = _time.GetUtcNow();

        // Clear a dead occupant of the new id before locking the old entry: never hold two published entries' locks.
        var newHandle = SessionHandle.FromId(newId);
        if (_sessions.TryGetValue(newHandle, out var occupant) && !TryRemoveIfDead(occupant, now))
        {
            return ValueTask.FromResult(false);
        }

        if (!_sessions.TryGetValue(SessionHandle.FromId(oldId), out var entry))
        {
            return ValueTask.FromResult(false);
        }

        lock (entry.Gate)
        {
            if (!IsLiveLocked(entry, now))
            {
                return ValueTask.FromResult(false);
            }

            var current = entry.Current;
            var moved = new Entry(new SessionSnapshot(
                null, newHandle, current.CreatedAt, now, current.IdleTimeout, current.AbsoluteExpiresAt,
                current.Principal, current.Version + 1, current.Attributes));

            // Locked before publishing: a save to the new id waits until the principal index points at it.
            lock (moved.Gate)
            {
                if (!_sessions.TryAdd(newHandle, moved))
                {
                    return ValueTask.FromResult(false);
                }

                entry.Removed = true;
                _sessions.TryRemove(KeyValuePair.Create(current.Handle, entry));
                IndexRename(current.Principal, current.Handle, newHandle);
            }
        }

        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id,
        string name,
        ReadOnlyMemory<byte>? expected,
        byte[]? replacement,
        CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckCompareAndSet(id, name, replacement, _limits);
        cancellationToken.ThrowIfCancellationRequested();

        if (!_sessions.TryGetValue(SessionHandle.FromId(id), out var entry))
        {
            return ValueTask.FromResult(AttributeCasResult.Gone);
        }

        var now = _time.GetUtcNow();
        lock (entry.Gate)
        {
            if (!IsLiveLocked(entry, now))
            {
                return ValueTask.FromResult(AttributeCasResult.Gone);
            }

            var current = entry.Current;
            current.Attributes.TryGetValue(name, out var stored);
            var matches = expected is { } wanted
                ? stored is not null && stored.AsSpan().SequenceEqual(wanted.Span)
                : stored is null;
            if (!matches)
            {
                return ValueTask.FromResult(AttributeCasResult.Mismatch(stored));
            }

            var attributes = new Dictionary<string, byte[]>(current.Attributes, StringComparer.Ordinal);
            if (replacement is null)
            {
                attributes.Remove(name);
            }
            else
            {
                attributes[name] = (byte[])replacement.Clone();
            }

            ValidateCountGrowth(current.Attributes.Count, attributes.Count);
            entry.Current = With(current, now, current.Version + 1, current.Principal, current.IdleTimeout, attributes);
        }

        return ValueTask.FromResult(AttributeCasResult.Succeeded);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<IReadOnlyList<SessionSnapshot>>(FindLive(principal, _time.GetUtcNow()));
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(handle);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_sessions.TryGetValue(handle, out var entry))
        {
            return ValueTask.FromResult(false);
        }

        var now = _time.GetUtcNow();
        lock (entry.Gate)
        {
            if (!IsLiveLocked(entry, now) || !string.Equals(entry.Current.Principal, principal, StringComparison.Ordinal))
            {
                return ValueTask.FromResult(false);
            }

            RemoveLocked(entry);
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult((long)_sessions.Count);
    }

    /// <inheritdoc />
    /// <remarks>Admissions of one principal are serialized by a lock (one of a fixed set, chosen by the principal's hash).</remarks>
    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckAdmit(id, principal, maxSessions, policy);
        cancellationToken.ThrowIfCancellationRequested();
        var gate = _admissionGates[(StringComparer.Ordinal.GetHashCode(principal) & int.MaxValue) % _admissionGates.Length];
        lock (gate)
        {
            var now = _time.GetUtcNow();
            var handle = SessionHandle.FromId(id);
            if (!_sessions.TryGetValue(handle, out var entry) || TryRemoveIfDead(entry, now))
            {
                return ValueTask.FromResult(SessionAdmission.Gone);
            }

            if (string.Equals(entry.Current.Principal, principal, StringComparison.Ordinal))
            {
                return ValueTask.FromResult(SessionAdmission.Admitted([]));
            }

            // Oldest first: the first absolute expiry, as every store orders them.
            var others = FindLive(principal, now)
                .Where(s => !string.Equals(s.Handle, handle, StringComparison.Ordinal))
                .OrderBy(static s => s.AbsoluteExpiresAt).ThenBy(static s => s.CreatedAt).ThenBy(static s => s.Handle, StringComparer.Ordinal)
                .ToList();
            var excess = others.Count - (maxSessions - 1);
            if (excess > 0 && policy == SessionCapPolicy.RefuseNewSession)
            {
                return ValueTask.FromResult(SessionAdmission.Refused);
            }

            var ended = new List<string>(Math.Max(excess, 0));
            foreach (var oldest in others.Take(Math.Max(excess, 0)))
            {
                if (_sessions.TryGetValue(oldest.Handle, out var victim))
                {
                    lock (victim.Gate)
                    {
                        if (!victim.Removed)
                        {
                            RemoveLocked(victim);
                        }
                    }
                }

                ended.Add(oldest.Handle);
            }

            lock (entry.Gate)
            {
                if (!IsLiveLocked(entry, now))
                {
                    return ValueTask.FromResult(SessionAdmission.Gone);
                }

                var current = entry.Current;
                entry.Current = With(current, now, current.Version + 1, principal, current.IdleTimeout, current.Attributes);
                IndexMove(current.Principal, principal, handle);
            }

            return ValueTask.FromResult(SessionAdmission.Admitted(ended));
        }
    }

    /// <summary>Stops the background sweep. The store keeps working; expired sessions are then removed only when read.</summary>
    public void Dispose() => _sweepTimer.Dispose();

    /// <inheritdoc cref="Dispose" />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>One sweep tick: examines the next batch of sessions and removes the expired ones.</summary>
    internal void Sweep()
    {
        // A slow tick must not overlap the next one; the skipped tick's work is done by the following one.
        if (Interlocked.Exchange(ref _sweeping, 1) == 1)
        {
            return;
        }

        try
        {
            var now = _time.GetUtcNow();
            _sweepCursor ??= _sessions.GetEnumerator();
            for (var examined = 0; examined < _sweepBatchSize; examined++)
            {
                if (!_sweepCursor.MoveNext())
                {
                    _sweepCursor.Dispose();
                    _sweepCursor = null;
                    break;
                }

                var entry = _sweepCursor.Current.Value;
                if (entry.Current.IsExpiredAt(now))
                {
                    TryRemoveIfDead(entry, now);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private List<SessionSnapshot> FindLive(string principal, DateTimeOffset now)
    {
        string[] handles;
        lock (_principalsGate)
        {
            if (!_principals.TryGetValue(principal, out var set))
            {
                return [];
            }

            handles = [.. set];
        }

        var found = new List<SessionSnapshot>(handles.Length);
        foreach (var handle in handles)
        {
            if (_sessions.TryGetValue(handle, out var entry) && !entry.Removed)
            {
                var session = entry.Current;
                if (!session.IsExpiredAt(now) && string.Equals(session.Principal, principal, StringComparison.Ordinal))
                {
                    found.Add(session);
                }
            }
        }

        return found;
    }

    private bool NeedsTouch(SessionSnapshot session, DateTimeOffset now)
        => now - session.LastAccessedAt >= session.IdleTimeout * _touchFraction;

    /// <summary>Whether the entry is live; removes it when it has expired. Call under the entry's lock.</summary>
    private bool IsLiveLocked(Entry entry, DateTimeOffset now)
    {
        if (entry.Removed)
        {
            return false;
        }

        if (entry.Current.IsExpiredAt(now))
        {
            RemoveLocked(entry);
            return false;
        }

        return true;
    }

    /// <summary>Removes the entry if it is removed or expired; returns whether it is dead (so its id is free).</summary>
    private bool TryRemoveIfDead(Entry entry, DateTimeOffset now)
    {
        lock (entry.Gate)
        {
            return !IsLiveLocked(entry, now);
        }
    }

    private void RemoveLocked(Entry entry)
    {
        entry.Removed = true;
        var session = entry.Current;
        _sessions.TryRemove(KeyValuePair.Create(session.Handle, entry));
        IndexMove(session.Principal, null, session.Handle);
    }

    private void IndexAdd(string? principal, string id) => IndexMove(null, principal, id);

    private void IndexRename(string? principal, string oldId, string newId)
    {
        if (principal is null)
        {
            return;
        }

        lock (_principalsGate)
        {
            if (!_principals.TryGetValue(principal, out var ids))
            {
                ids = new HashSet<string>(StringComparer.Ordinal);
                _principals[principal] = ids;
            }

            ids.Remove(oldId);
            ids.Add(newId);
        }
    }

    private void IndexMove(string? from, string? to, string id)
    {
        if (from is null && to is null)
        {
            return;
        }

        lock (_principalsGate)
        {
            if (from is not null && _principals.TryGetValue(from, out var old))
            {
                old.Remove(id);
                if (old.Count == 0)
                {
                    _principals.Remove(from);
                }
            }

            if (to is not null)
            {
                if (!_principals.TryGetValue(to, out var ids))
                {
                    ids = new HashSet<string>(StringComparer.Ordinal);
                    _principals[to] = ids;
                }

                ids.Add(id);
            }
        }
    }

    private void ValidateCountGrowth(int before, int after)
    {
        if (after > before)
        {
            _limits.ValidateCount(after);
        }
    }

    private static SessionSnapshot With(
        SessionSnapshot session, DateTimeOffset lastAccessedAt, long version, string? principal, TimeSpan idleTimeout, IReadOnlyDictionary<string, byte[]> attributes)
        => new(session.Id, session.Handle, session.CreatedAt, lastAccessedAt, idleTimeout, session.AbsoluteExpiresAt, principal, version, attributes);

    /// <summary>A stored snapshot (which keeps no id) as the caller that named it by <paramref name="id"/> sees it.</summary>
    private static SessionSnapshot WithId(SessionSnapshot stored, string id)
        => new(id, stored.Handle, stored.CreatedAt, stored.LastAccessedAt, stored.IdleTimeout, stored.AbsoluteExpiresAt, stored.Principal, stored.Version, stored.Attributes);

    private static Dictionary<string, byte[]> CopyAttributes(IReadOnlyDictionary<string, byte[]> attributes)
    {
        var copy = new Dictionary<string, byte[]>(attributes.Count, StringComparer.Ordinal);
        foreach (var (name, value) in attributes)
        {
            copy[name] = (byte[])value.Clone();
        }

        return copy;
    }

    /// <summary>
    /// One stored session. <see cref="Current"/> is an immutable snapshot swapped under <see cref="Gate"/>;
    /// readers may read it without the lock. Once <see cref="Removed"/>, an entry never comes back:
    /// a new session with the same id gets a new entry.
    /// </summary>
    private sealed class Entry(SessionSnapshot current)
    {
        public readonly Lock Gate = new();
        public volatile SessionSnapshot Current = current;
        public volatile bool Removed;
    }
}
