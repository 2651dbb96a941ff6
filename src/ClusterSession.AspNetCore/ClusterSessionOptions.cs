using ClusterSession.AspNetCore.Protection;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore;

/// <summary>Options of <c>services.AddClusterSession(...)</c>. Validated at startup.</summary>
public sealed class ClusterSessionOptions : ISessionStoreBuilder
{
    private CookieBuilder _cookie = new SessionCookieBuilder();

    internal Func<IServiceProvider, ISessionStore>? StoreFactory { get; private set; }

    /// <summary>The sliding idle timeout of new sessions. Default 20 minutes (as ASP.NET Core's own session).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>The absolute lifetime of a session, however active it is. Default 12 hours.</summary>
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromHours(12);

    /// <summary>
    /// Limits on attribute names, sizes and counts, checked by the middleware as a request writes and by the store
    /// before it saves. Set them here only: <c>UseInMemory</c>, <c>UseRedis</c> and <c>UsePostgres</c> give the store
    /// these limits, and a store's options set to other limits fail when the store is created. A store given to
    /// <see cref="UseStore"/> should be made with these limits. Default <see cref="SessionLimits.Default"/>.
    /// </summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <summary>How the session id travels between client and server. Default <see cref="SessionIdTransports.Cookie"/>.</summary>
    public SessionIdTransports Transports { get; set; } = SessionIdTransports.Cookie;

    /// <summary>
    /// The session cookie (used when <see cref="Transports"/> includes <see cref="SessionIdTransports.Cookie"/>), as
    /// ASP.NET Core's <c>SessionOptions.Cookie</c>.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item><description><see cref="CookieBuilder.Name"/> defaults to <c>.ClusterSession</c>.</description></item>
    /// <item><description><see cref="CookieBuilder.Path"/> defaults to <c>/</c>.</description></item>
    /// <item><description><see cref="CookieBuilder.Domain"/> defaults to null (the request host only).</description></item>
    /// <item><description><see cref="CookieBuilder.HttpOnly"/> defaults to <c>true</c>.</description></item>
    /// <item><description><see cref="CookieBuilder.SameSite"/> defaults to <see cref="SameSiteMode.Lax"/>.</description></item>
    /// <item><description><see cref="CookieBuilder.SecurePolicy"/> defaults to <see cref="CookieSecurePolicy.SameAsRequest"/> (Secure on HTTPS).</description></item>
    /// <item><description><see cref="CookieBuilder.IsEssential"/> defaults to <c>false</c>, as ASP.NET Core's session.</description></item>
    /// <item><description><see cref="CookieBuilder.MaxAge"/> defaults to null: a browser-session cookie; the session itself
    /// still ends at its idle timeout or absolute lifetime. <see cref="CookieBuilder.Expiration"/> cannot be set (use MaxAge).</description></item>
    /// </list>
    /// </remarks>
    public CookieBuilder Cookie
    {
        get => _cookie;
        set => _cookie = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// The request and response header carrying the session id for API clients (used when
    /// <see cref="Transports"/> includes <see cref="SessionIdTransports.Header"/>). Default <c>X-Session-Id</c>.
    /// </summary>
    public string HeaderName { get; set; } = "X-Session-Id";

    /// <summary>
    /// The status code of a request that failed because the store was unavailable or a save did not land.
    /// Default 503 (Service Unavailable).
    /// </summary>
    public int StoreUnavailableStatusCode { get; set; } = StatusCodes.Status503ServiceUnavailable;

    /// <summary>
    /// The status code of a request whose session changes could not be saved because the session was
    /// deleted meanwhile (revoked, logged out elsewhere, expired), or whose atomic update kept meeting
    /// concurrent changes. Default 409 (Conflict).
    /// </summary>
    public int ConflictStatusCode { get; set; } = StatusCodes.Status409Conflict;

    /// <summary>
    /// The status code of a request whose changes the store refused at save for exceeding
    /// <see cref="Limits"/> (typically the attribute count, which a write-only request cannot check
    /// before it saves). Nothing of the request's changes is saved. Default 413 (Content Too Large).
    /// </summary>
    public int LimitExceededStatusCode { get; set; } = StatusCodes.Status413PayloadTooLarge;

    /// <summary>How long one store call may take before the request fails as unavailable. Default 5 seconds.</summary>
    public TimeSpan StoreTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Fail fast while the store is down: after consecutive outages, requests that need the session fail at
    /// once with <see cref="StoreUnavailableStatusCode"/> and a <c>Retry-After</c> header until a periodic
    /// try finds the store back. On by default; see <see cref="StoreCircuitBreakerOptions"/>.
    /// </summary>
    public StoreCircuitBreakerOptions CircuitBreaker { get; } = new();

    /// <summary>
    /// Whether a sign-in through ASP.NET Core authentication gives the session a new id (session fixation
    /// protection). The session is bound to the signed-in principal either way. Default true.
    /// </summary>
    public bool RenewIdOnSignIn { get; set; } = true;

    /// <summary>Whether a sign-out through ASP.NET Core authentication invalidates the session. Default true.</summary>
    public bool InvalidateOnSignOut { get; set; } = true;

    /// <summary>
    /// Whether cookie-authentication schemes keep their tickets in the session (server side) instead of in
    /// the cookie, so that revoking a session logs that device out. Requires <c>app.UseClusterSession()</c>
    /// before <c>app.UseAuthentication()</c>. Default true.
    /// </summary>
    public bool StoreAuthenticationTickets { get; set; } = true;

    /// <summary>
    /// Whether ASP.NET Core Data Protection keeps its key ring in the session store when the store is shared
    /// (Redis, PostgreSQL), so that every host of the application reads the cookies any other host protected:
    /// authentication, antiforgery, TempData. Applies only when the application configured no key persistence
    /// itself (such as <c>PersistKeysToFileSystem</c>); the application discriminator then becomes the
    /// application name unless the application set one, because the default (the content-root path) differs
    /// between hosts. The keys are stored as Data Protection hands them over: encrypted only when the application
    /// configures an encryptor (<c>ProtectKeysWithCertificate</c>), with a warning at start-up otherwise; a key in
    /// clear is refused once the ring holds encrypted keys. docs/aspnetcore.md, "Running several hosts", and
    /// docs/security.md, "The key ring at rest". Default true.
    /// </summary>
    public bool ShareDataProtectionKeys { get; set; } = true;

    /// <summary>
    /// Whether attribute values (the application's and ClusterSession's own, such as the authentication ticket) are
    /// encrypted before they reach the store, with the application's ASP.NET Core Data Protection (purpose
    /// <c>ClusterSession.Values.v1</c> and the attribute's name), so that whoever reads the store, a replica or a
    /// backup reads no value; the application reads plaintext as before. Attribute names, session metadata and the
    /// principal stay readable in the store. Default false.
    /// </summary>
    /// <remarks>
    /// <para>Values written before encryption was turned on are still read (and encrypted when next written), so
    /// turning it on signs no one out. Encrypted values are decrypted whether this is on or off, so turning it off
    /// again keeps reading them until they are rewritten in plain or expire.</para>
    /// <para>Every host needs the same Data Protection key ring: the one ClusterSession shares through a shared store
    /// (<see cref="ShareDataProtectionKeys"/>) or the application's own. A value whose key is lost or revoked, or
    /// that was altered in the store, reads as <see cref="UnreadableAttributes"/> says.</para>
    /// <para>Encryption adds up to 128 bytes to a value, so a value may then be at most
    /// <see cref="SessionLimits.MaxValueBytes"/> − 128 bytes. docs/security.md, "Values at rest".</para>
    /// </remarks>
    public bool EncryptValues { get; set; }

    /// <summary>
    /// Adopting ClusterSession in an application that used ASP.NET Core's <c>services.AddSession()</c>: imports each user's
    /// built-in session once, the first time a request of that user uses its session. Off by default; see
    /// <see cref="BuiltInSessionImportOptions"/> and docs/migrating.md.
    /// </summary>
    public BuiltInSessionImportOptions ImportBuiltInSession { get; } = new();

    /// <summary>
    /// Adopting ClusterSession in an application whose cookie authentication kept the whole ticket in the cookie (no ticket
    /// store): a cookie of that kind is accepted, its ticket moves into the session as at a sign-in (the session id rotates),
    /// and the browser gets the new cookies, whose authentication cookie holds only a reference. Needs
    /// <see cref="StoreAuthenticationTickets"/> and the Data Protection key ring that protected the old cookies. A cookie that
    /// does not unprotect, or whose ticket expired, is no sign-in, as before. Turn it off once the longest authentication
    /// cookie issued before the deploy has expired. Default false. docs/migrating.md.
    /// </summary>
    public bool ImportAuthenticationCookies { get; set; }

    /// <summary>Uses the store <paramref name="factory"/> creates (once, as a singleton).</summary>
    /// <returns>These options, for chaining.</returns>
    public ClusterSessionOptions UseStore(Func<IServiceProvider, ISessionStore> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        StoreFactory = factory;
        return this;
    }

    /// <inheritdoc />
    void ISessionStoreBuilder.UseStore(Func<IServiceProvider, ISessionStore> factory) => UseStore(factory);

    /// <summary>
    /// Whether a sign-in records the client's IP address with the session, so that
    /// <see cref="ISessionManager.ListAsync"/> shows it (<see cref="SessionInfo.ClientAddress"/>). Default false:
    /// an IP address is personal data in many jurisdictions; turn it on only when your privacy notice covers it.
    /// The address is <c>HttpContext.Connection.RemoteIpAddress</c>: behind a proxy or load balancer, add ASP.NET
    /// Core's <c>UseForwardedHeaders()</c> (with the proxies you trust) before <c>UseClusterSession()</c>, otherwise
    /// every session shows the proxy's address. ClusterSession never reads <c>X-Forwarded-For</c> itself.
    /// </summary>
    public bool RecordClientAddress { get; set; }

    /// <summary>
    /// What a typed read does when a stored attribute no longer deserializes as the type asked for, typically
    /// because a deploy changed the type: <c>session.Get&lt;T&gt;</c>, the typed <c>UpdateAsync</c> and the
    /// authentication tickets ClusterSession keeps. Default <see cref="UnreadableAttributePolicy.TreatAsAbsent"/>:
    /// the read returns default as if the attribute were not there, one warning is logged (event id 20, without
    /// the attribute's name or value) and <c>cluster_session.attribute.unreadable</c> counts it; the request goes on.
    /// </summary>
    public UnreadableAttributePolicy UnreadableAttributes { get; set; } = UnreadableAttributePolicy.TreatAsAbsent;

    /// <summary>
    /// The most sessions one principal (<c>ClaimsPrincipal.Identity.Name</c>) may have alive at once, or null (the default)
    /// for no cap. Enforced at every sign-in, atomically per principal in the store, so it holds across nodes under
    /// concurrent sign-ins; what happens at the cap is <see cref="SessionCapPolicy"/>. Needs a store that implements
    /// <see cref="ISessionStore.AdmitAsync"/> (every store ClusterSession ships does). A principal bound by setting
    /// <see cref="IClusterSession.Principal"/> directly, without a sign-in, is not counted against the cap.
    /// </summary>
    public int? MaxSessionsPerPrincipal { get; set; }

    /// <summary>
    /// What a sign-in does when the principal already has <see cref="MaxSessionsPerPrincipal"/> sessions. Default
    /// <see cref="ClusterSession.SessionCapPolicy.EndOldestSession"/>: the new sign-in succeeds and the principal's oldest
    /// sessions (the ones that started first) end on every node. <see cref="ClusterSession.SessionCapPolicy.RefuseNewSession"/>:
    /// the sign-in fails with <see cref="SessionCapExceededStatusCode"/>, binds nothing and sends no authentication cookie.
    /// </summary>
    public SessionCapPolicy SessionCapPolicy { get; set; } = SessionCapPolicy.EndOldestSession;

    /// <summary>The status of a sign-in refused by <see cref="ClusterSession.SessionCapPolicy.RefuseNewSession"/>. Default 409 (Conflict).</summary>
    public int SessionCapExceededStatusCode { get; set; } = StatusCodes.Status409Conflict;

    /// <summary>
    /// How session lifecycle events reach the application's <see cref="ISessionLifecycleObserver"/>s: to every node or to one.
    /// Events flow only when at least one observer is registered.
    /// </summary>
    public SessionLifecycleEventOptions Events { get; set; } = new();
}

/// <summary>The ways a session id can travel; combine them with <c>|</c>.</summary>
[Flags]
public enum SessionIdTransports
{
    /// <summary>A cookie (browsers).</summary>
    Cookie = 1,

    /// <summary>A request header, echoed in the response when the id is new or changed (API clients).</summary>
    Header = 2,
}

/// <summary>The session cookie's secure defaults; see <see cref="ClusterSessionOptions.Cookie"/>.</summary>
internal sealed class SessionCookieBuilder : CookieBuilder
{
    public SessionCookieBuilder()
    {
        Name = ".ClusterSession";
        Path = "/";
        SecurePolicy = CookieSecurePolicy.SameAsRequest;
        SameSite = SameSiteMode.Lax;
        HttpOnly = true;
        IsEssential = false;
    }

    public override TimeSpan? Expiration
    {
        get => null;
        set => throw new InvalidOperationException("ClusterSessionOptions.Cookie.Expiration cannot be set: set Cookie.MaxAge for a persistent cookie; the session itself ends at IdleTimeout or AbsoluteLifetime.");
    }
}
