using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// <c>--https</c>: the load balancer serves HTTPS with a self-signed certificate made at start-up, and the cookies are
/// <c>__Host-</c> cookies (Secure, Path=/, no Domain), signed in through it by a client that pins that certificate.
/// </summary>
public sealed partial class HttpsTests
{
    [Fact]
    public async Task Signing_in_over_https_sets_Host_prefixed_secure_cookies_with_root_path_and_no_domain()
    {
        await using var demo = await DemoProcess.StartAsync(2, "--https");
        var loadBalancer = new Uri($"https://127.0.0.1:{demo.Port.ToString(CultureInfo.InvariantCulture)}");
        Assert.Contains($"ClusterDemo ready: {loadBalancer.OriginalString}", demo.Output, StringComparison.Ordinal);
        var fingerprint = Fingerprint().Match(demo.Output);
        Assert.True(fingerprint.Success, "The demo printed no certificate fingerprint. Output:\n" + demo.Output);
        using var http = PinnedClient(fingerprint.Groups["sha256"].Value);

        using var login = await http.PostAsJsonAsync(new Uri(loadBalancer, "/api/login"), new { user = "alice", password = "demo" });

        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var setCookies = login.Headers.GetValues("Set-Cookie").ToList();
        Assert.Equal(2, setCookies.Count);
        var cookies = setCookies.Select(Parse).ToDictionary(c => c.Name, StringComparer.Ordinal);
        Assert.Equal(["__Host-ClusterDemo.Auth", "__Host-ClusterSession"], cookies.Keys.Order(StringComparer.Ordinal));
        foreach (var header in setCookies)
        {
            var cookie = Parse(header);
            Assert.True(cookie.Attributes.ContainsKey("secure"), header);
            Assert.True(cookie.Attributes.ContainsKey("httponly"), header);
            Assert.Equal("/", cookie.Attributes.GetValueOrDefault("path"));
            Assert.False(cookie.Attributes.ContainsKey("domain"), header);
            Assert.Equal("lax", cookie.Attributes.GetValueOrDefault("samesite"));
        }

        // The cookies work: the next request, sent to the load balancer (another node), is signed in.
        using var me = new HttpRequestMessage(HttpMethod.Get, new Uri(loadBalancer, "/api/me"));
        me.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", cookies.Values.Select(c => c.Name + "=" + c.Value)));
        using var meResponse = await http.SendAsync(me);
        Assert.Equal(HttpStatusCode.OK, meResponse.StatusCode);
        Assert.Contains("\"user\":\"alice\"", await meResponse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_self_signed_certificate_is_refused_by_a_client_that_does_not_pin_it()
    {
        await using var demo = await DemoProcess.StartAsync(1, "--https");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri($"https://127.0.0.1:{demo.Port.ToString(CultureInfo.InvariantCulture)}/healthz")));

        Assert.Equal(HttpRequestError.SecureConnectionError, error.HttpRequestError);
    }

    /// <summary>An HttpClient that trusts exactly the certificate with this SHA-256 fingerprint, and nothing else self-signed.</summary>
    private static HttpClient PinnedClient(string sha256)
    {
        var handler = new SocketsHttpHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors)
                    => errors == SslPolicyErrors.None
                        || (certificate is not null && string.Equals(certificate.GetCertHashString(HashAlgorithmName.SHA256), sha256, StringComparison.OrdinalIgnoreCase)),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    private static SetCookie Parse(string header)
    {
        var parts = header.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var equals = parts[0].IndexOf('=', StringComparison.Ordinal);
        var attributes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in parts.Skip(1))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            attributes[(eq < 0 ? part : part[..eq]).ToLowerInvariant()] = eq < 0 ? "" : part[(eq + 1)..].ToLowerInvariant();
        }

        return new SetCookie(parts[0][..equals], parts[0][(equals + 1)..], attributes);
    }

    [GeneratedRegex("^Certificate: self-signed for 127\\.0\\.0\\.1 and localhost, SHA-256 (?<sha256>[0-9A-F]{64})$", RegexOptions.Multiline)]
    private static partial Regex Fingerprint();

    private sealed record SetCookie(string Name, string Value, Dictionary<string, string> Attributes);
}
