using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore;

/// <summary>
/// Lists and revokes a principal's sessions ("log out everywhere"). Sessions are addressed by an opaque
/// handle that is not the session id and cannot be turned back into one, so a handle shown in a page
/// cannot be used to hijack the session. Registered as a singleton by <c>AddClusterSession</c>.
/// </summary>
public interface ISessionManager
{
    /// <summary>The live sessions of <paramref name="principal"/>, newest first.</summary>
    /// <param name="principal">The principal (user name) the sessions are bound to.</param>
    /// <param name="current">The current request, to mark its session <see cref="SessionInfo.IsCurrent"/>; optional.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<SessionInfo>> ListAsync(string principal, HttpContext? current = null, CancellationToken cancellationToken = default);

    /// <summary>Revokes (deletes) one session of <paramref name="principal"/>; returns whether it existed.</summary>
    ValueTask<bool> RevokeAsync(string principal, string handle, CancellationToken cancellationToken = default);

    /// <summary>
    /// Revokes every session of <paramref name="principal"/>, on every server at once; returns how many.
    /// Signing out the current request afterwards also expires its cookies.
    /// </summary>
    ValueTask<int> RevokeAllAsync(string principal, CancellationToken cancellationToken = default);

    /// <summary>
    /// "Sign out my other devices": revokes every session of the current request's principal except the current
    /// one, on every server at once; returns how many. The current session and its sign-in stay. Returns 0 when
    /// the current session is bound to no principal. A device that signs in while this runs may keep its session.
    /// </summary>
    /// <param name="current">The request whose session stays; its session's <see cref="IClusterSession.Principal"/> names the user.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<int> RevokeOthersAsync(HttpContext current, CancellationToken cancellationToken = default);

    /// <summary>The handle of a session id, as <see cref="SessionInfo.Handle"/> shows it.</summary>
    string GetHandle(string sessionId);
}

/// <summary>One session of a principal, as <see cref="ISessionManager.ListAsync"/> describes it.</summary>
/// <param name="Handle">The opaque handle to pass to <see cref="ISessionManager.RevokeAsync"/>.</param>
/// <param name="CreatedAt">When the session was created.</param>
/// <param name="LastAccessedAt">When it was last used (throttled by the store).</param>
/// <param name="ExpiresAt">When it ends unless used again.</param>
/// <param name="UserAgent">The User-Agent of the request that signed in, if known.</param>
/// <param name="IsCurrent">Whether this is the session of the request that asked.</param>
/// <param name="Device">
/// The device as a person recognises it, from <paramref name="UserAgent"/>: "Firefox on Windows", "Safari on iPhone",
/// "Chrome on Android"; "Unknown device" when the User-Agent is missing or not recognised.
/// </param>
/// <param name="ClientAddress">
/// The client's IP address at sign-in, only when <see cref="ClusterSessionOptions.RecordClientAddress"/> is on
/// (off by default); otherwise null.
/// </param>
public sealed record SessionInfo(
    string Handle,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastAccessedAt,
    DateTimeOffset ExpiresAt,
    string? UserAgent,
    bool IsCurrent,
    string Device,
    string? ClientAddress);
