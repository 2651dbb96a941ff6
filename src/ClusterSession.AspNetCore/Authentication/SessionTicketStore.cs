using System.Security.Cryptography;
using System.Text;
using ClusterSession.AspNetCore.Adoption;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Authentication;

/// <summary>
/// Keeps cookie-authentication tickets inside the request's session, so the authentication cookie holds
/// only a random key. A ticket is found only through the session the request carries and only when the
/// keys match; deleting or revoking the session therefore logs that device out on every server.
/// </summary>
internal sealed class SessionTicketStore : ITicketStore
{
    private static readonly byte[] TicketLabel = "ClusterSession.ticket/"u8.ToArray();

    private const string NeedsContext = "The ClusterSession ticket store needs the HttpContext overloads (ASP.NET Core 7 or later calls them).";

    public async Task<string> StoreAsync(AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var key = NewReference();
        await StoreUnderAsync(key, ticket, httpContext, cancellationToken).ConfigureAwait(false);
        return key;
    }

    /// <summary>Stores <paramref name="ticket"/> under a reference chosen beforehand (<see cref="NewReference"/>), as an imported cookie needs.</summary>
    public static async Task StoreUnderAsync(string key, AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var session = await LoadAsync(httpContext, cancellationToken).ConfigureAwait(false);
        session.SetReserved(ReservedNames.TicketKeyDigest, Digest(key));
        if (session.WritesPreviousLayout)
        {
            // Nodes of the previous release compare the reference in clear; the digest goes once the upgrade is finished.
            session.SetReserved(ReservedNames.TicketKey, Encoding.ASCII.GetBytes(key));
        }
        else
        {
            session.RemoveReserved(ReservedNames.TicketKey);
        }

        session.SetReserved(ReservedNames.Ticket, TicketSerializer.Default.Serialize(ticket));
        if (session.Principal is null && ticket.Principal.Identity?.Name is { } name)
        {
            session.Principal = name;
        }
    }

    public async Task RenewAsync(string key, AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var session = await LoadAsync(httpContext, cancellationToken).ConfigureAwait(false);

        // A DoesNotExtendSession endpoint extends neither the session nor the ticket kept in it.
        if (!session.DoesNotExtend && Matches(session, key))
        {
            session.SetReserved(ReservedNames.Ticket, TicketSerializer.Default.Serialize(ticket));
        }
    }

    public async Task<AuthenticationTicket?> RetrieveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var session = await LoadAsync(httpContext, cancellationToken).ConfigureAwait(false);
        return Matches(session, key) && session.TryGetReserved(ReservedNames.Ticket, out var bytes)
            ? Deserialize(session, bytes)
            : null;
    }

    public async Task RemoveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var session = await LoadAsync(httpContext, cancellationToken).ConfigureAwait(false);

        // An expired ticket is left to the session's own end (or the next ordinary request) on a DoesNotExtendSession endpoint, which writes nothing.
        if (!session.DoesNotExtend && Matches(session, key))
        {
            session.RemoveReserved(ReservedNames.TicketKey);
            session.RemoveReserved(ReservedNames.TicketKeyDigest);
            session.RemoveReserved(ReservedNames.Ticket);
        }
    }

    public Task<string> StoreAsync(AuthenticationTicket ticket) => throw new NotSupportedException(NeedsContext);

    public Task RenewAsync(string key, AuthenticationTicket ticket) => throw new NotSupportedException(NeedsContext);

    public Task<AuthenticationTicket?> RetrieveAsync(string key) => throw new NotSupportedException(NeedsContext);

    public Task RemoveAsync(string key) => throw new NotSupportedException(NeedsContext);

    private static async ValueTask<RequestSession> LoadAsync(HttpContext httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var session = RequestSession.Get(httpContext);
        await session.GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        return session;
    }

    /// <summary>
    /// The stored ticket, or null (signed out) when it no longer deserializes, e.g. a claim type that a deploy
    /// removed, as <see cref="ClusterSessionOptions.UnreadableAttributes"/> says.
    /// </summary>
    private static AuthenticationTicket? Deserialize(RequestSession session, byte[] bytes)
    {
        try
        {
            return TicketSerializer.Default.Deserialize(bytes);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or EndOfStreamException or ArgumentException)
        {
            session.OnUnreadableAttribute(typeof(AuthenticationTicket), ex);
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="key"/> (from the authentication cookie) is the session's ticket reference. The session keeps
    /// only its digest, so whoever reads the store cannot build an accepted cookie from it; a reference kept in clear by the
    /// previous release is still accepted, and replaced by its digest once no node of that release can read the session.
    /// </summary>
    private static bool Matches(RequestSession session, string key)
    {
        // Our references are 22 characters; anything much longer was not made here.
        if (key is null || key.Length > 64)
        {
            return false;
        }

        var hasClear = session.TryGetReserved(ReservedNames.TicketKey, out var clear);
        var matches = (session.TryGetReserved(ReservedNames.TicketKeyDigest, out var digest) && CryptographicOperations.FixedTimeEquals(digest, Digest(key)))
            || (hasClear && CryptographicOperations.FixedTimeEquals(clear, Encoding.ASCII.GetBytes(key)));
        if (matches && hasClear && !session.WritesPreviousLayout)
        {
            // The reference in clear stays only while the previous release's nodes may need it.
            session.SetReserved(ReservedNames.TicketKeyDigest, Digest(key));
            session.RemoveReserved(ReservedNames.TicketKey);
        }

        return matches;
    }

    private static byte[] Digest(string key)
    {
        Span<byte> input = stackalloc byte[TicketLabel.Length + key.Length];
        TicketLabel.CopyTo(input);
        Encoding.ASCII.GetBytes(key, input[TicketLabel.Length..]);
        return SHA256.HashData(input);
    }

    /// <summary>A new ticket reference: 128 random bits, 22 URL-safe characters.</summary>
    public static string NewReference()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return System.Buffers.Text.Base64Url.EncodeToString(bytes);
    }
}

/// <summary>Points every cookie-authentication scheme at <see cref="SessionTicketStore"/> unless it has its own store.</summary>
internal sealed class ConfigureCookieTicketStore : IPostConfigureOptions<CookieAuthenticationOptions>
{
    private readonly ClusterSessionOptions _options;
    private readonly SessionTicketStore _store;

    private readonly IServiceProvider _services;

    public ConfigureCookieTicketStore(IOptions<ClusterSessionOptions> options, SessionTicketStore store, IServiceProvider services)
    {
        _options = options.Value;
        _store = store;
        _services = services;
    }

    public void PostConfigure(string? name, CookieAuthenticationOptions options)
    {
        if (_options.StoreAuthenticationTickets)
        {
            options.SessionStore ??= _store;
            if (_options.ImportAuthenticationCookies && ReferenceEquals(options.SessionStore, _store))
            {
                Adoption.AuthenticationCookieImport.Configure(name ?? string.Empty, options, _store, _services);
            }
        }
    }
}
