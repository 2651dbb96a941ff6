using ClusterSession.AspNetCore.Sessions;
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
    public void Default_cookie_is_httponly_lax_root_and_not_secure_on_plain_http()
    {
        var options = new ClusterSessionOptions();
        var context = new DefaultHttpContext();
        var id = SessionId.Create();

        SessionIdTransport.Write(context, options, id);

        var cookie = context.Response.Headers.SetCookie.Single()!;
        Assert.StartsWith(".ClusterSession=" + id, cookie, StringComparison.Ordinal);
        Assert.Contains("path=/;", cookie + ";", StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("max-age", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("expires", cookie, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Cookie_expiration_is_refused_with_a_pointer_to_max_age()
    {
        var options = new ClusterSessionOptions();

        var error = Assert.Throws<InvalidOperationException>(() => options.Cookie.Expiration = TimeSpan.FromHours(1));

        Assert.Contains("Cookie.MaxAge", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => options.Cookie = null!);
    }

    [Fact]
    public void Expiring_the_cookie_deletes_it_on_the_configured_path_and_domain()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Domain = "example.test";
        options.Cookie.Path = "/app";
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = ".ClusterSession=" + SessionId.Create();

        SessionIdTransport.Expire(context, options);

        var cookie = context.Response.Headers.SetCookie.Single()!;
        Assert.StartsWith(".ClusterSession=;", cookie, StringComparison.Ordinal);
        Assert.Contains("expires=Thu, 01 Jan 1970", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("domain=example.test", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/app", cookie, StringComparison.OrdinalIgnoreCase);
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
