namespace ClusterSession.AspNetCore.Tests;

/// <summary>Stand-in until the core's InMemorySessionStore lands on main; replaced then.</summary>
internal sealed class TemporaryTestStore : ISessionStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, SessionSnapshot> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public TemporaryTestStore(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (TryGetLive(session.Id, out _))
            {
                return new(false);
            }

            _sessions[session.Id] = session;
            return new(true);
        }
    }

    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!TryGetLive(id, out var s))
            {
                return new((SessionSnapshot?)null);
            }

            var touched = With(s, s.Attributes, s.Principal, s.IdleTimeout, s.Version, _time.GetUtcNow());
            _sessions[id] = touched;
            return new(touched);
        }
    }

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!TryGetLive(changes.Id, out var s))
            {
                return new(SessionSaveResult.Gone);
            }

            var attributes = new Dictionary<string, byte[]>(s.Attributes, StringComparer.Ordinal);
            foreach (var name in changes.Removed)
            {
                attributes.Remove(name);
            }

            foreach (var (name, value) in changes.Set)
            {
                attributes[name] = value;
            }

            _sessions[changes.Id] = With(s, attributes, changes.PrincipalChanged ? changes.Principal : s.Principal, changes.IdleTimeout ?? s.IdleTimeout, s.Version + 1, _time.GetUtcNow());
            return new(SessionSaveResult.Saved);
        }
    }

    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var live = TryGetLive(id, out _);
            _sessions.Remove(id);
            return new(live);
        }
    }

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!TryGetLive(oldId, out var s) || TryGetLive(newId, out _))
            {
                return new(false);
            }

            _sessions.Remove(oldId);
            _sessions[newId] = new SessionSnapshot(newId, s.CreatedAt, s.LastAccessedAt, s.IdleTimeout, s.AbsoluteExpiresAt, s.Principal, s.Version + 1, s.Attributes);
            return new(true);
        }
    }

    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!TryGetLive(id, out var s))
            {
                return new(AttributeCasResult.Gone);
            }

            s.Attributes.TryGetValue(name, out var current);
            var same = expected is null ? current is null : current is not null && expected.Value.Span.SequenceEqual(current);
            if (!same)
            {
                return new(AttributeCasResult.Mismatch(current));
            }

            var attributes = new Dictionary<string, byte[]>(s.Attributes, StringComparer.Ordinal);
            if (replacement is null)
            {
                attributes.Remove(name);
            }
            else
            {
                attributes[name] = replacement;
            }

            _sessions[id] = With(s, attributes, s.Principal, s.IdleTimeout, s.Version + 1, _time.GetUtcNow());
            return new(AttributeCasResult.Succeeded);
        }
    }

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return new([.. _sessions.Values.Where(s => s.Principal == principal && !s.IsExpiredAt(now))]);
        }
    }

    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return new(_sessions.Values.LongCount(s => !s.IsExpiredAt(now)));
        }
    }

    private bool TryGetLive(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SessionSnapshot? session)
        => _sessions.TryGetValue(id, out session) && !session.IsExpiredAt(_time.GetUtcNow());

    private static SessionSnapshot With(SessionSnapshot s, IReadOnlyDictionary<string, byte[]> attributes, string? principal, TimeSpan idle, long version, DateTimeOffset now)
        => new(s.Id, s.CreatedAt, now, idle, s.AbsoluteExpiresAt, principal, version, attributes);
}
