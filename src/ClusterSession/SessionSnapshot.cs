using System.Diagnostics;

namespace ClusterSession;

/// <summary>
/// One session as a store returned it: metadata and attributes at one version. Immutable;
/// a request changes a session through <see cref="TrackedSession"/>, which records a
/// <see cref="SessionChanges"/> to save.
/// </summary>
public sealed class SessionSnapshot
{
    private string? _handle;

    /// <summary>Creates a snapshot of the session with id <paramref name="id"/>.</summary>
    public SessionSnapshot(
        string id,
        DateTimeOffset createdAt,
        DateTimeOffset lastAccessedAt,
        TimeSpan idleTimeout,
        DateTimeOffset absoluteExpiresAt,
        string? principal,
        long version,
        IReadOnlyDictionary<string, byte[]> attributes)
        : this(id ?? throw new ArgumentNullException(nameof(id)), handle: null, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, principal, version, attributes, checkedOne: true)
    {
    }

    /// <summary>
    /// Creates a snapshot of a session known by its <paramref name="handle"/>, and by its <paramref name="id"/> when the
    /// caller has it: a store keeps no ids, so a session found through the principal index has none.
    /// </summary>
    public SessionSnapshot(
        string? id,
        string handle,
        DateTimeOffset createdAt,
        DateTimeOffset lastAccessedAt,
        TimeSpan idleTimeout,
        DateTimeOffset absoluteExpiresAt,
        string? principal,
        long version,
        IReadOnlyDictionary<string, byte[]> attributes)
        : this(id, handle ?? throw new ArgumentNullException(nameof(handle)), createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, principal, version, attributes, checkedOne: true)
    {
    }

    /// <summary>Both public constructors: an id or a handle was checked (the handle of an id is computed on first use).</summary>
    private SessionSnapshot(
        string? id,
        string? handle,
        DateTimeOffset createdAt,
        DateTimeOffset lastAccessedAt,
        TimeSpan idleTimeout,
        DateTimeOffset absoluteExpiresAt,
        string? principal,
        long version,
        IReadOnlyDictionary<string, byte[]> attributes,
        bool checkedOne)
    {
        Debug.Assert(checkedOne && (id is not null || handle is not null), "A snapshot needs an id or a handle.");
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleTimeout, TimeSpan.Zero);
        Id = id;
        _handle = handle;
        CreatedAt = createdAt;
        LastAccessedAt = lastAccessedAt;
        IdleTimeout = idleTimeout;
        AbsoluteExpiresAt = absoluteExpiresAt;
        Principal = principal;
        Version = version;
        Attributes = attributes;
    }

    /// <summary>Creates the first snapshot of a new session at <paramref name="now"/>, version 0.</summary>
    public static SessionSnapshot CreateNew(
        string id,
        DateTimeOffset now,
        TimeSpan idleTimeout,
        TimeSpan absoluteLifetime,
        IReadOnlyDictionary<string, byte[]>? attributes = null,
        string? principal = null)
    {
        SessionId.ThrowIfMalformed(id);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(absoluteLifetime, TimeSpan.Zero);
        return new SessionSnapshot(
            id, now, now, idleTimeout, now + absoluteLifetime, principal, 0,
            attributes ?? new Dictionary<string, byte[]>(StringComparer.Ordinal));
    }

    /// <summary>
    /// The session id (a bearer secret: never log it, see <see cref="SessionId.ToLogTag"/>), or null for a session found
    /// through the principal index (<see cref="ISessionStore.FindByPrincipalAsync"/>): the store keeps no ids.
    /// </summary>
    public string? Id { get; }

    /// <summary>The session's <see cref="SessionHandle"/>: the digest of its id that the store keys it by.</summary>
    /// <remarks>Computed on first use when the snapshot was made from an id (a SHA-256 the request path rarely needs).</remarks>
    public string Handle => _handle ??= SessionHandle.FromId(Id!);

    /// <summary>When the session was created.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>
    /// When the session was last refreshed. Stores throttle refreshes, so this can lag the
    /// latest request by up to the store's touch interval.
    /// </summary>
    public DateTimeOffset LastAccessedAt { get; }

    /// <summary>The sliding idle timeout: the session expires this long after its last access.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>The absolute end of the session, however active it is.</summary>
    public DateTimeOffset AbsoluteExpiresAt { get; }

    /// <summary>The name of the principal the session is bound to, or null for an anonymous session.</summary>
    public string? Principal { get; }

    /// <summary>A number that grows with every save; stores use it for compare-and-set.</summary>
    public long Version { get; }

    /// <summary>The attributes: name to serialized value.</summary>
    public IReadOnlyDictionary<string, byte[]> Attributes { get; }

    /// <summary>The earlier of the idle expiry and the absolute expiry.</summary>
    public DateTimeOffset ExpiresAt => Min(LastAccessedAt + IdleTimeout, AbsoluteExpiresAt);

    /// <summary>Whether the session has expired at <paramref name="now"/>.</summary>
    public bool IsExpiredAt(DateTimeOffset now) => now >= ExpiresAt;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a <= b ? a : b;
}
