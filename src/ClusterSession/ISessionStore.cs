namespace ClusterSession;

/// <summary>
/// A shared session store. Every implementation passes the store conformance suite
/// (tests/ClusterSession.Testing). Implementations are thread-safe, enforce expiry themselves
/// (an expired session is absent), write only what a change set changes, and never bring back
/// a session that was deleted or expired. Store outages surface as
/// <see cref="SessionStoreUnavailableException"/>, never as a missing session.
/// Every operation that takes a session id throws <see cref="ArgumentException"/> for an id that is not
/// well formed (<see cref="SessionId.IsWellFormed(string?)"/>), before it reaches the server; no exception
/// message or log line of a store contains a session id, an attribute name or a value.
/// Every operation honours its <see cref="CancellationToken"/> promptly, by cancelling the call in progress:
/// hosts apply their deadline through it (ASP.NET Core's <c>StoreTimeout</c>) and add no timer of their own.
/// </summary>
public interface ISessionStore
{
    /// <summary>
    /// Creates a new session with its initial attributes and principal.
    /// Returns false, writing nothing, when a session with that id already exists.
    /// </summary>
    ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads a session and counts the load as an access: when the last refresh is older than the
    /// store's touch interval, the last access time and the expiry are refreshed in the same round trip.
    /// Returns null when the session does not exist or has expired. The id must be well formed
    /// (<see cref="SessionId.IsWellFormed(string?)"/>); callers filter bad input before it gets here.
    /// </summary>
    ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads a session as <see cref="LoadAsync(string, CancellationToken)"/> does, with <paramref name="options"/>:
    /// <see cref="SessionLoadOptions.NoTouch"/> reads it without counting the read as an access (no last-access or
    /// expiry refresh, whatever the touch interval says), for requests that must not keep a session alive (ASP.NET
    /// Core's <c>DoesNotExtendSession</c> endpoints). An expired session is absent either way.
    /// </summary>
    /// <remarks>
    /// The default implementation serves <see cref="SessionLoadOptions.None"/> through
    /// <see cref="LoadAsync(string, CancellationToken)"/> and throws <see cref="NotSupportedException"/> for
    /// <see cref="SessionLoadOptions.NoTouch"/>, so a store that cannot read without touching never silently extends a
    /// session; every store ClusterSession ships, and every layer over a store, implements it.
    /// </remarks>
    /// <param name="id">The session id (well formed).</param>
    /// <param name="options">How to load.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The session, or null when it does not exist or has expired.</returns>
    ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
        => options == SessionLoadOptions.None
            ? LoadAsync(id, cancellationToken)
            : throw new NotSupportedException(
                $"The session store {GetType().Name} cannot load a session without touching it; implement ISessionStore.LoadAsync(string, SessionLoadOptions, CancellationToken) or remove DoesNotExtendSession from the endpoint.");

    /// <summary>
    /// Applies a change set to an existing session and refreshes its last access and expiry.
    /// Attributes not named in the change set are left as they are, so concurrent saves of
    /// different attributes all land. Returns <see cref="SessionSaveResult.Gone"/>, writing nothing,
    /// when the session was deleted, expired or moved to another id meanwhile.
    /// </summary>
    ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default);

    /// <summary>Deletes a session. Idempotent: returns whether a live session was deleted.</summary>
    ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a session, attributes and metadata, to <paramref name="newId"/>; afterwards
    /// <paramref name="oldId"/> is absent and saves to it return <see cref="SessionSaveResult.Gone"/>.
    /// A save to the old id that races with the move either lands before it (and is moved) or returns Gone.
    /// Returns false, moving nothing, when the old session does not exist (or has expired) or the new id is
    /// taken. <paramref name="newId"/> equal to <paramref name="oldId"/> counts as taken (by the session
    /// itself): false, and the session stays as it is.
    /// </summary>
    ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Atomically replaces one attribute if its stored value still equals <paramref name="expected"/>
    /// (null: the attribute is absent). A null <paramref name="replacement"/> removes it. Counts as an access.
    /// Use <see cref="SessionStoreExtensions.UpdateAttributeAsync"/> for a read-modify-write loop.
    /// </summary>
    ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id,
        string name,
        ReadOnlyMemory<byte>? expected,
        byte[]? replacement,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// The live sessions bound to <paramref name="principal"/>, in no particular order. The store keeps no session ids, so
    /// these snapshots carry a <see cref="SessionSnapshot.Handle"/> and no <see cref="SessionSnapshot.Id"/> (a store that
    /// still reads a previous release's layout may fill it).
    /// </summary>
    ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the live session of <paramref name="principal"/> whose <see cref="SessionHandle"/> is <paramref name="handle"/>
    /// (revoking one device of a user); returns whether one was deleted. A handle of a session bound to another principal
    /// deletes nothing.
    /// </summary>
    /// <remarks>
    /// The default implementation finds the principal's sessions and deletes the match by its id, so it works only for a
    /// store whose <see cref="FindByPrincipalAsync"/> returns ids; a store keyed by handles implements it directly.
    /// </remarks>
    async ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handle);
        foreach (var session in await FindByPrincipalAsync(principal, cancellationToken).ConfigureAwait(false))
        {
            if (string.Equals(session.Handle, handle, StringComparison.Ordinal))
            {
                return session.Id is { } id
                    ? await DeleteAsync(id, cancellationToken).ConfigureAwait(false)
                    : throw new NotSupportedException($"The session store {GetType().Name} returns sessions without ids and must implement ISessionStore.DeleteByHandleAsync itself.");
            }
        }

        return false;
    }

    /// <summary>The number of live sessions. May include sessions that expired moments ago and have not been swept yet.</summary>
    ValueTask<long> CountAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Binds the stored session <paramref name="id"/> to <paramref name="principal"/> under a cap of
    /// <paramref name="maxSessions"/> live sessions per principal, atomically per principal across every node:
    /// however many admissions of one principal run at once, at most <paramref name="maxSessions"/> of its admitted
    /// sessions stay alive. Sessions whose expiry has passed by the store's clock do not count. When the cap is reached,
    /// <see cref="SessionCapPolicy.EndOldestSession"/> deletes the principal's oldest sessions (first absolute expiry
    /// first: the ones that started first) and returns their ids; <see cref="SessionCapPolicy.RefuseNewSession"/>
    /// writes nothing and returns <see cref="SessionAdmissionStatus.Refused"/>. Admitting a session that is already
    /// admitted for the principal admits it again and ends nothing. Returns <see cref="SessionAdmissionStatus.Gone"/>
    /// when the session does not exist. Stores that cannot enforce a cap throw <see cref="NotSupportedException"/>
    /// (the default implementation), so a configured cap never silently goes unenforced.
    /// </summary>
    /// <param name="id">The stored session to admit (well formed).</param>
    /// <param name="principal">The principal it signs in as.</param>
    /// <param name="maxSessions">The cap, at least 1.</param>
    /// <param name="policy">What happens at the cap.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
        => throw new NotSupportedException(
            $"The session store {GetType().Name} cannot enforce a per-principal session cap; use a store that implements ISessionStore.AdmitAsync or remove the cap.");
}

/// <summary>How <see cref="ISessionStore.LoadAsync(string, SessionLoadOptions, CancellationToken)"/> loads a session.</summary>
[Flags]
public enum SessionLoadOptions
{
    /// <summary>A normal load: an access, which refreshes the session's expiry when the touch interval is due.</summary>
    None = 0,

    /// <summary>A read only: the last access and the expiry stay as they are.</summary>
    NoTouch = 1,
}

/// <summary>The result of <see cref="ISessionStore.SaveAsync"/>.</summary>
public enum SessionSaveResult
{
    /// <summary>The change set was applied.</summary>
    Saved,

    /// <summary>The session no longer exists (deleted, expired or moved); nothing was written.</summary>
    Gone,
}

/// <summary>The outcome of a compare-and-set.</summary>
public enum AttributeCasStatus
{
    /// <summary>The attribute had the expected value and now has the replacement.</summary>
    Succeeded,

    /// <summary>The attribute had another value; <see cref="AttributeCasResult.Current"/> holds it.</summary>
    Mismatch,

    /// <summary>The session no longer exists; nothing was written.</summary>
    Gone,
}

/// <summary>The result of <see cref="ISessionStore.CompareAndSetAttributeAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Current">On <see cref="AttributeCasStatus.Mismatch"/>, the value found (null: absent).</param>
public readonly record struct AttributeCasResult(AttributeCasStatus Status, byte[]? Current)
{
    /// <summary>A successful compare-and-set.</summary>
    public static AttributeCasResult Succeeded => new(AttributeCasStatus.Succeeded, null);

    /// <summary>The session is gone.</summary>
    public static AttributeCasResult Gone => new(AttributeCasStatus.Gone, null);

    /// <summary>A mismatch that found <paramref name="current"/>.</summary>
    public static AttributeCasResult Mismatch(byte[]? current) => new(AttributeCasStatus.Mismatch, current);
}
