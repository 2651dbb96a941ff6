using System.Text;
using ClusterSession.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// ClusterSession's own attributes inside a session (<see cref="Prefix"/> + name), hidden from the
/// application, and the principal binding that writes one of them.
/// </summary>
internal static class ReservedNames
{
    /// <summary>Attribute names ClusterSession keeps for itself; the application can neither see nor set them.</summary>
    public const string Prefix = "__cs.";

    /// <summary>The User-Agent of the binding request: <see cref="DeviceNames.UserAgentAttribute"/> without the prefix.</summary>
    public const string UserAgent = "ua";
    /// <summary>The ticket reference as the previous release kept it, in clear: written only while its nodes may still serve.</summary>
    public const string TicketKey = "tk";

    /// <summary>A digest of the ticket reference (<see cref="SessionTicketStore"/>): a store reader cannot turn it into a cookie.</summary>
    public const string TicketKeyDigest = "tkh";
    public const string Ticket = "ticket";
    public const string ClientAddress = "ip";

    private const int MaxUserAgentLength = 256;

    public static bool IsReserved(string key) => key.StartsWith(Prefix, StringComparison.Ordinal);

    public static void ThrowIfReserved(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (IsReserved(key))
        {
            throw new ArgumentException($"Session keys starting with '{Prefix}' are reserved for ClusterSession; choose another key.", nameof(key));
        }
    }

    /// <summary>
    /// Binds <paramref name="session"/> to <paramref name="principal"/> and remembers the User-Agent of the binding
    /// request, which <see cref="ISessionManager.ListAsync"/> shows to tell a user's devices apart, and, with
    /// <paramref name="recordClientAddress"/>, the client's address as ASP.NET Core sees it (forwarded headers only
    /// through its ForwardedHeaders middleware).
    /// </summary>
    public static void BindPrincipal(TrackedSession session, string? principal, HttpContext context, bool recordClientAddress)
    {
        if (string.Equals(principal, session.Principal, StringComparison.Ordinal))
        {
            return;
        }

        session.SetPrincipal(principal);
        var userAgent = context.Request.Headers.UserAgent.ToString();
        SetOrRemove(session, UserAgent, principal is not null && userAgent.Length > 0 ? (userAgent.Length > MaxUserAgentLength ? userAgent[..MaxUserAgentLength] : userAgent) : null);
        var address = context.Connection.RemoteIpAddress;
        SetOrRemove(session, ClientAddress, principal is not null && recordClientAddress && address is not null ? (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString() : null);
    }

    private static void SetOrRemove(TrackedSession session, string name, string? value)
    {
        if (value is not null)
        {
            session.Set(Prefix + name, Encoding.UTF8.GetBytes(value));
        }
        else if (session.TryGetValue(Prefix + name, out _))
        {
            session.Remove(Prefix + name);
        }
    }
}
