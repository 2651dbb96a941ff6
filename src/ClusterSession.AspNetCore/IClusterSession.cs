namespace ClusterSession.AspNetCore;

/// <summary>
/// The session of the current request, loaded once and lazily. Reads see the stored session plus this
/// request's own changes; writes are saved as a change set before the response starts, so concurrent
/// requests that change different attributes all land. Get it with
/// <c>await HttpContext.GetClusterSessionAsync()</c>; typed access is in <see cref="ClusterSessionExtensions"/>.
/// Not thread-safe, like the request it belongs to.
/// </summary>
public interface IClusterSession
{
    /// <summary>
    /// The session id: a bearer secret, never log it. For a new session it is assigned at once but the
    /// session is stored, and the id sent to the client, only when the request writes something.
    /// </summary>
    string Id { get; }

    /// <summary>Whether the session is new in this request and not stored yet.</summary>
    bool IsNew { get; }

    /// <summary>When the session was created.</summary>
    DateTimeOffset CreatedAt { get; }

    /// <summary>When the session was last refreshed in the store (throttled, see <see cref="SessionSnapshot.LastAccessedAt"/>).</summary>
    DateTimeOffset LastAccessedAt { get; }

    /// <summary>The sliding idle timeout; setting it saves the new timeout with the session.</summary>
    TimeSpan IdleTimeout { get; set; }

    /// <summary>The absolute end of the session.</summary>
    DateTimeOffset AbsoluteExpiresAt { get; }

    /// <summary>
    /// The principal (user name) the session is bound to, or null when anonymous. Sign-in through
    /// ASP.NET Core authentication sets it automatically; set it yourself for custom sign-in flows.
    /// </summary>
    string? Principal { get; set; }

    /// <summary>The attribute names, without ClusterSession's own reserved ones.</summary>
    IEnumerable<string> Keys { get; }

    /// <summary>Reads an attribute's raw bytes.</summary>
    bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? value);

    /// <summary>Sets an attribute's raw bytes; saved when the request commits.</summary>
    /// <exception cref="SessionLimitExceededException">The name, size or count is over the configured limits.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1716", Justification = "Matches ISession.Set, which applications already use.")]
    void Set(string key, byte[] value);

    /// <summary>Removes an attribute; returns whether it existed.</summary>
    bool Remove(string key);

    /// <summary>Removes every attribute (the session, its id and principal remain).</summary>
    void Clear();

    /// <summary>
    /// Atomic read-modify-write of one attribute, applied to the store at once (compare-and-set with retry):
    /// concurrent updates of the same attribute from any server are never lost. <paramref name="update"/> may
    /// run several times and must have no side effects. A new session is stored first.
    /// </summary>
    /// <returns>The value written (null: removed).</returns>
    /// <exception cref="SessionConflictException">The attribute kept changing concurrently; retry the request.</exception>
    /// <exception cref="SessionGoneException">The session was deleted meanwhile.</exception>
    ValueTask<byte[]?> UpdateAsync(string key, Func<byte[]?, byte[]?> update, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives the session a new id, keeping its data, and sends the new id to the client (session fixation
    /// protection). Sign-in through ASP.NET Core authentication does this automatically.
    /// </summary>
    ValueTask RenewIdAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the session from the store at once and expires the client's cookie. The request continues with
    /// a fresh, empty session that is stored only if the request writes to it.
    /// </summary>
    ValueTask InvalidateAsync(CancellationToken cancellationToken = default);

    /// <summary>Saves this request's changes now instead of when the response starts.</summary>
    ValueTask CommitAsync(CancellationToken cancellationToken = default);
}
