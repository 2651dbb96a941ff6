using ClusterSession.AspNetCore.Internal;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>The cookie and header the id travels in, for settings a plain-HTTP Kestrel test cannot show.</summary>
public sealed class SessionIdTransportTests
{
    [Fact]
    public void Cookie_is_secure_on_https_and_follows_its_options()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = "sid";
        options.Cookie.Domain = "example.test";
        options.Cookie.Path = "/app";
        options.Cookie.MaxAge = TimeSpan.FromHours(1);
        var context = new DefaultHttpContext();
        context.Request.Scheme = "https";
        var id = SessionId.Create();

        SessionIdTransport.Write(context, options, id);

        var cookie = context.Response.Headers.SetCookie.Single()!;
        Assert.StartsWith("sid=" + id, cookie, StringComparison.Ordinal);
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("domain=example.test", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/app", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("max-age=3600", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(StringValuesOf(context, "X-Session-Id"), string.Empty);
    }

    [Fact]
    public void Header_transport_alone_sends_no_cookie()
    {
        var options = new ClusterSessionOptions { Transports = SessionIdTransports.Header };
        var context = new DefaultHttpContext();
        var id = SessionId.Create();

        SessionIdTransport.Write(context, options, id);

        Assert.Equal(0, context.Response.Headers.SetCookie.Count);
        Assert.Equal(id, StringValuesOf(context, "X-Session-Id"));
    }

    [Fact]
    public void Header_wins_over_cookie_when_both_transports_are_on()
    {
        var options = new ClusterSessionOptions { Transports = SessionIdTransports.Cookie | SessionIdTransports.Header };
        var context = new DefaultHttpContext();
        var fromHeader = SessionId.Create();
        context.Request.Headers["X-Session-Id"] = fromHeader;
        context.Request.Headers.Cookie = ".ClusterSession=" + SessionId.Create();

        Assert.Equal(fromHeader, SessionIdTransport.Read(context.Request, options, out var malformed));
        Assert.False(malformed);
    }

    private static string StringValuesOf(HttpContext context, string header) => context.Response.Headers[header].ToString();
}
