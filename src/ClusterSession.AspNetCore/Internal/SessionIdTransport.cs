using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>Reads and writes the session id through the configured transports (cookie, header, or both).</summary>
internal static class SessionIdTransport
{
    /// <summary>
    /// The well-formed id the request carries, or null. Anything malformed (empty, oversized, other
    /// characters, several header values) is no id at all: it never reaches the store.
    /// </summary>
    public static string? Read(HttpRequest request, ClusterSessionOptions options, out bool malformed)
    {
        malformed = false;
        if ((options.Transports & SessionIdTransports.Header) != 0 && request.Headers.TryGetValue(options.HeaderName, out var values))
        {
            if (values.Count == 1 && SessionId.IsWellFormed(values[0]))
            {
                return values[0];
            }

            malformed = true;
        }

        if ((options.Transports & SessionIdTransports.Cookie) != 0 && request.Cookies.TryGetValue(options.Cookie.Name, out var cookie))
        {
            if (SessionId.IsWellFormed(cookie))
            {
                return cookie;
            }

            malformed = true;
        }

        return null;
    }

    public static void Write(HttpContext context, ClusterSessionOptions options, string id)
    {
        if ((options.Transports & SessionIdTransports.Cookie) != 0)
        {
            var cookieOptions = CreateCookieOptions(context, options.Cookie);
            cookieOptions.MaxAge = options.Cookie.MaxAge;
            context.Response.Cookies.Append(options.Cookie.Name, id, cookieOptions);
        }

        if ((options.Transports & SessionIdTransports.Header) != 0)
        {
            context.Response.Headers[options.HeaderName] = id;
        }

        // The id is a credential: keep responses that carry a new one out of shared caches.
        context.Response.Headers.CacheControl = "no-cache,no-store";
    }

    public static void Expire(HttpContext context, ClusterSessionOptions options)
    {
        if ((options.Transports & SessionIdTransports.Cookie) != 0 && context.Request.Cookies.ContainsKey(options.Cookie.Name))
        {
            context.Response.Cookies.Delete(options.Cookie.Name, CreateCookieOptions(context, options.Cookie));
        }

        if ((options.Transports & SessionIdTransports.Header) != 0 && context.Request.Headers.ContainsKey(options.HeaderName))
        {
            context.Response.Headers[options.HeaderName] = string.Empty;
        }
    }

    private static CookieOptions CreateCookieOptions(HttpContext context, SessionCookieOptions cookie) => new()
    {
        Domain = cookie.Domain,
        Path = cookie.Path,
        HttpOnly = cookie.HttpOnly,
        SameSite = cookie.SameSite,
        IsEssential = cookie.IsEssential,
        Secure = cookie.SecurePolicy switch
        {
            CookieSecurePolicy.Always => true,
            CookieSecurePolicy.None => false,
            _ => context.Request.IsHttps,
        },
    };
}
