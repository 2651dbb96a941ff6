using System.Text;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// ClusterSession's own attributes inside a session (<see cref="Prefix"/> + name), hidden from the
/// application, and the principal binding that writes one of them.
/// </summary>
internal static class ReservedNames
{
    /// <summary>Attribute names ClusterSession keeps for itself; the application can neither see nor set them.</summary>
    public const string Prefix = "__cs.";

    public const string UserAgent = "ua";
    public const string TicketKey = "tk";
    public const string Ticket = "ticket";

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
    /// request, which <see cref="ISessionManager.ListAsync"/> shows to tell a user's devices apart.
    /// </summary>
    public static void BindPrincipal(TrackedSession session, string? principal, HttpRequest request)
    {
        if (string.Equals(principal, session.Principal, StringComparison.Ordinal))
        {
            return;
        }

        session.SetPrincipal(principal);
        var userAgent = request.Headers.UserAgent.ToString();
        if (principal is not null && userAgent.Length > 0)
        {
            session.Set(Prefix + UserAgent, Encoding.UTF8.GetBytes(userAgent.Length > MaxUserAgentLength ? userAgent[..MaxUserAgentLength] : userAgent));
        }
        else if (session.TryGetValue(Prefix + UserAgent, out _))
        {
            session.Remove(Prefix + UserAgent);
        }
    }
}
