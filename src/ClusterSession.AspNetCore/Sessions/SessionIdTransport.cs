using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Sessions;

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

        if ((options.Transports & SessionIdTransports.Cookie) != 0 && request.Cookies.TryGetValue(options.Cookie.Name!, out var cookie))
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
            context.Response.Cookies.Append(options.Cookie.Name!, id, options.Cookie.Build(context));
        }

        if ((options.Transports & SessionIdTransports.Header) != 0)
        {
            context.Response.Headers[options.HeaderName] = id;
        }

        // The id is a credential: keep responses that carry a new one out of shared caches (the same three
        // headers as ASP.NET Core's session, for HTTP/1.0 caches too).
        context.Response.Headers.CacheControl = "no-cache,no-store";
        context.Response.Headers.Pragma = "no-cache";
        context.Response.Headers.Expires = "-1";
    }

    public static void Expire(HttpContext context, ClusterSessionOptions options)
    {
        if ((options.Transports & SessionIdTransports.Cookie) != 0 && context.Request.Cookies.ContainsKey(options.Cookie.Name!))
        {
            context.Response.Cookies.Delete(options.Cookie.Name!, options.Cookie.Build(context));
        }

        if ((options.Transports & SessionIdTransports.Header) != 0 && context.Request.Headers.ContainsKey(options.HeaderName))
        {
            context.Response.Headers[options.HeaderName] = string.Empty;
        }
    }
}

/// <summary>
/// What the response of one request must tell the client about its id: nothing, the new or renewed id,
/// or that the id it sent is gone. Applied once, before the response starts.
/// </summary>
internal sealed class PendingIdUpdate
{
    private bool _send;
    private bool _expire;

    /// <summary>The session got a new id (created or renewed): send it.</summary>
    public void Send()
    {
        _send = true;
        _expire = false;
    }

    /// <summary>The client's id ended (invalidated, gone): expire it unless a new id is sent.</summary>
    public void Expire()
    {
        _send = false;
        _expire = true;
    }

    /// <summary>The request continues with a fresh session that has no id to send yet.</summary>
    public void ExpireIf(bool clientHasId)
    {
        _send = false;
        _expire = clientHasId;
    }

    /// <summary>Writes the pending update into the response headers; nothing once the response started.</summary>
    public void Apply(HttpContext context, ClusterSessionOptions options, string? id)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        if (_send && id is not null)
        {
            SessionIdTransport.Write(context, options, id);
        }
        else if (_expire)
        {
            SessionIdTransport.Expire(context, options);
        }

        _send = false;
        _expire = false;
    }
}
