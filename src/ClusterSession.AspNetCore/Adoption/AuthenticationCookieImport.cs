using System.Security.Cryptography;
using System.Security.Claims;
using ClusterSession.AspNetCore.Authentication;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Adoption;

/// <summary>
/// The import of self-contained authentication cookies (<see cref="ClusterSessionOptions.ImportAuthenticationCookies"/>).
/// With a ticket store, ASP.NET Core's cookie handler accepts only a cookie holding a reference (a session-id claim); an
/// older cookie holding the whole ticket fails as "SessionId missing". Two wrappers bridge that, per cookie scheme:
/// <list type="number">
/// <item><description><see cref="ImportingTicketFormat"/> turns such a cookie into a reference ticket whose reference is marked
/// (<see cref="Marker"/>), carries the new reference to use and, in memory only, the old ticket.</description></item>
/// <item><description><see cref="ImportingTicketStore"/> receives that reference from the handler: it signs the session in as a
/// sign-in would (new session id, principal bound), stores the ticket under the new reference and sends the new authentication
/// cookie; the handler then goes on as for any cookie (validation events, sliding renewal). Should the handler renew the
/// cookie, the format writes the new reference, never the marked one.</description></item>
/// </list>
/// </summary>
internal static class AuthenticationCookieImport
{
    /// <summary>The claim the cookie handler keeps the reference in (<c>CookieAuthenticationHandler.SessionIdClaim</c>).</summary>
    public const string SessionIdClaim = "Microsoft.AspNetCore.Authentication.Cookies-SessionId";

    /// <summary>Starts a reference made here for an imported cookie: the new reference, then the old ticket.</summary>
    public const string Marker = "cs-import:";

    /// <summary>The length of a reference (<see cref="SessionTicketStore.NewReference"/>).</summary>
    private const int ReferenceLength = 22;

    /// <summary>The cookie handler's own protector purposes; fixed by ASP.NET Core, or no old cookie would read.</summary>
    private const string CookiePurpose = "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware";

    public static void Configure(string scheme, CookieAuthenticationOptions options, SessionTicketStore store, IServiceProvider services)
    {
        if (options.TicketDataFormat is null)
        {
            // Made now as the cookie handler's own post-configuration makes it, which runs later when authentication was
            // registered after ClusterSession.
            options.DataProtectionProvider ??= services.GetRequiredService<IDataProtectionProvider>();
            options.TicketDataFormat = new TicketDataFormat(options.DataProtectionProvider.CreateProtector(CookiePurpose, scheme, "v2"));
        }

        if (options.TicketDataFormat is ImportingTicketFormat)
        {
            return;
        }

        var format = new ImportingTicketFormat(options.TicketDataFormat);
        options.TicketDataFormat = format;
        options.SessionStore = new ImportingTicketStore(scheme, options, format.Inner, store, services);
    }

    public static bool IsMarked(string key) => key.StartsWith(Marker, StringComparison.Ordinal) && key.Length > Marker.Length + ReferenceLength;

    /// <summary>The new reference a marked reference carries (the reference itself when it is not marked).</summary>
    public static string ReferenceOf(string key) => IsMarked(key) ? key.Substring(Marker.Length, ReferenceLength) : key;

    /// <summary>The old ticket a marked reference carries, or null.</summary>
    public static AuthenticationTicket? TicketOf(string key)
    {
        try
        {
            return TicketSerializer.Default.Deserialize(Convert.FromBase64String(key[(Marker.Length + ReferenceLength)..]));
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or EndOfStreamException or ArgumentException)
        {
            return null;
        }
    }

    public static string? SessionIdOf(AuthenticationTicket ticket)
        => ticket.Principal.FindFirst(static c => string.Equals(c.Type, SessionIdClaim, StringComparison.Ordinal))?.Value;

    /// <summary>The ticket an authentication cookie holds when a ticket store is used: the reference alone, as the cookie handler writes it.</summary>
    public static AuthenticationTicket ReferenceTicket(string reference, string scheme, string? issuer)
        => new(
            new ClaimsPrincipal(new ClaimsIdentity([new Claim(SessionIdClaim, reference, ClaimValueTypes.String, issuer)], issuer)),
            null,
            scheme);

    /// <summary>
    /// Reads authentication cookies as before; a cookie holding a whole ticket instead of a reference reads as a marked reference
    /// for <see cref="ImportingTicketStore"/>. Writes every ticket as before, a marked reference as the new reference it carries.
    /// </summary>
    internal sealed class ImportingTicketFormat : ISecureDataFormat<AuthenticationTicket>
    {
        public ImportingTicketFormat(ISecureDataFormat<AuthenticationTicket> inner) => Inner = inner;

        public ISecureDataFormat<AuthenticationTicket> Inner { get; }

        public string Protect(AuthenticationTicket data) => Protect(data, purpose: null);

        public string Protect(AuthenticationTicket data, string? purpose)
        {
            ArgumentNullException.ThrowIfNull(data);
            if (SessionIdOf(data) is { } key && IsMarked(key))
            {
                var identity = data.Principal.Identity as ClaimsIdentity;
                data = ReferenceTicket(ReferenceOf(key), data.AuthenticationScheme, identity?.AuthenticationType);
            }

            return Inner.Protect(data, purpose);
        }

        public AuthenticationTicket? Unprotect(string? protectedText) => Unprotect(protectedText, purpose: null);

        public AuthenticationTicket? Unprotect(string? protectedText, string? purpose)
        {
            var ticket = Inner.Unprotect(protectedText, purpose);
            if (ticket is null || SessionIdOf(ticket) is not null)
            {
                return ticket;
            }

            var marked = Marker + SessionTicketStore.NewReference() + Convert.ToBase64String(TicketSerializer.Default.Serialize(ticket));
            return ReferenceTicket(marked, ticket.AuthenticationScheme, issuer: null);
        }
    }

    /// <summary>
    /// <see cref="SessionTicketStore"/> for one cookie scheme, which also completes the import of a marked reference: once per
    /// cookie, in the request that carries it.
    /// </summary>
    internal sealed class ImportingTicketStore : ITicketStore
    {
        private static readonly byte[] ImportedLabel = "ClusterSession.imported-ticket/"u8.ToArray();

        private readonly string _scheme;
        private readonly CookieAuthenticationOptions _cookie;
        private readonly ISecureDataFormat<AuthenticationTicket> _format;
        private readonly SessionTicketStore _inner;
        private readonly IServiceProvider _services;

        public ImportingTicketStore(string scheme, CookieAuthenticationOptions cookie, ISecureDataFormat<AuthenticationTicket> format, SessionTicketStore inner, IServiceProvider services)
        {
            _scheme = scheme;
            _cookie = cookie;
            _format = format;
            _inner = inner;
            _services = services;
        }

        public Task<string> StoreAsync(AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
            => _inner.StoreAsync(ticket, httpContext, cancellationToken);

        public Task RenewAsync(string key, AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
            => _inner.RenewAsync(ReferenceOf(key), ticket, httpContext, cancellationToken);

        public Task RemoveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
            => _inner.RemoveAsync(ReferenceOf(key), httpContext, cancellationToken);

        public Task<AuthenticationTicket?> RetrieveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
            => IsMarked(key) ? ImportAsync(key, httpContext, cancellationToken) : _inner.RetrieveAsync(key, httpContext, cancellationToken);

        public Task<string> StoreAsync(AuthenticationTicket ticket) => _inner.StoreAsync(ticket);

        public Task RenewAsync(string key, AuthenticationTicket ticket) => _inner.RenewAsync(key, ticket);

        public Task<AuthenticationTicket?> RetrieveAsync(string key) => _inner.RetrieveAsync(key);

        public Task RemoveAsync(string key) => _inner.RemoveAsync(key);

        private async Task<AuthenticationTicket?> ImportAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(httpContext);
            var runtime = _services.GetRequiredService<SessionRuntime>();
            var ticket = TicketOf(key);
            if (ticket is null)
            {
                Log.AuthenticationCookieNotImported(runtime.Logger, _scheme, "unreadable ticket");
                return null;
            }

            if (ticket.Properties.ExpiresUtc is { } expires && expires < runtime.Time.GetUtcNow())
            {
                Log.AuthenticationCookieNotImported(runtime.Logger, _scheme, "expired");
                return null;
            }

            if (httpContext.Response.HasStarted)
            {
                Log.AuthenticationCookieNotImported(runtime.Logger, _scheme, "response already started");
                return null;
            }

            if (!await ClaimOnceAsync(runtime, ticket, RequestSession.Get(httpContext).Deadline, cancellationToken).ConfigureAwait(false))
            {
                Log.AuthenticationCookieNotImported(runtime.Logger, _scheme, "imported already");
                return null;
            }

            var session = RequestSession.Get(httpContext);
            try
            {
                await session.SignInAsync(ticket.Principal.Identity?.Name, runtime.Options.RenewIdOnSignIn, cancellationToken).ConfigureAwait(false);
            }
            catch (SessionCapExceededException)
            {
                Log.AuthenticationCookieNotImported(runtime.Logger, _scheme, "session cap reached");
                return null;
            }

            var reference = ReferenceOf(key);
            await SessionTicketStore.StoreUnderAsync(reference, ticket, httpContext, cancellationToken).ConfigureAwait(false);
            AppendCookie(httpContext, reference, ticket.Properties);
            Log.AuthenticationCookieImported(runtime.Logger, _scheme, SessionId.ToLogTag(session.Id));
            return ticket;
        }

        /// <summary>
        /// Makes the import of one old cookie happen once: the first request that carries it creates a marker session in the
        /// store, under an id derived from the cookie's ticket (the store keeps only its handle), that lives as long as the
        /// cookie would; a replay of the cookie, or a second request racing the first, finds it and is not signed in. The
        /// marker holds no attribute and no principal.
        /// </summary>
        private async Task<bool> ClaimOnceAsync(SessionRuntime runtime, AuthenticationTicket ticket, RequestDeadline deadline, CancellationToken cancellationToken)
        {
            var now = runtime.Time.GetUtcNow();
            var lifetime = (ticket.Properties.ExpiresUtc ?? (ticket.Properties.IssuedUtc ?? now) + _cookie.ExpireTimeSpan) - now;
            if (lifetime <= TimeSpan.Zero)
            {
                return false;
            }

            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData([.. ImportedLabel, .. TicketSerializer.Default.Serialize(ticket)], digest);
            var marker = SessionSnapshot.CreateNew(System.Buffers.Text.Base64Url.EncodeToString(digest[..SessionId.ByteLength]), now, lifetime, lifetime);
            return await runtime.CreateAsync(marker, deadline, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>The new authentication cookie, as the cookie handler writes it at sign-in; a chunked old cookie loses its chunks.</summary>
        private void AppendCookie(HttpContext context, string reference, AuthenticationProperties properties)
        {
            var name = _cookie.Cookie.Name!;
            var manager = _cookie.CookieManager;
            var options = _cookie.Cookie.Build(context);
            options.Expires = null;
            if (context.Request.Cookies.TryGetValue(name, out var old) && old.StartsWith("chunks-", StringComparison.Ordinal))
            {
                manager.DeleteCookie(context, name, options);
            }

            if (properties.IsPersistent && properties.ExpiresUtc is { } expires)
            {
                options.Expires = expires.ToUniversalTime();
            }

            var value = _format.Protect(ReferenceTicket(reference, _scheme, _cookie.ClaimsIssuer));
            manager.AppendResponseCookie(context, name, value, options);
            context.Response.Headers.CacheControl = "no-cache,no-store";
            context.Response.Headers.Pragma = "no-cache";
        }
    }
}
