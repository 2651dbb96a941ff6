using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// A script's view of the demo: one "device" holding the demo's cookies (the session cookie and, once
/// logged in, the authentication cookie), which it sends to whichever address it is told (the load
/// balancer or one node), as a browser would after the cookies were set. Cookies are handled by hand
/// so that one device's cookies can be replayed anywhere.
/// </summary>
public sealed class DemoClient : IDisposable
{
    /// <summary>The session cookie.</summary>
    public const string CookieName = ".ClusterSession";

    /// <summary>The cookie-authentication cookie, set at login.</summary>
    public const string AuthCookieName = ".ClusterDemo.Auth";

    private readonly HttpClient _http;
    private readonly SortedDictionary<string, string> _cookies = new(StringComparer.Ordinal);

    public DemoClient(string userAgent = "ClusterDemo.Tests")
    {
        _http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(userAgent);
    }

    /// <summary>All cookies this device holds, as a <c>Cookie</c> request header, or null when it holds none.</summary>
    public string? Cookie
    {
        get => _cookies.Count == 0 ? null : string.Join("; ", _cookies.Select(c => c.Key + "=" + c.Value));
        set
        {
            _cookies.Clear();
            foreach (var pair in (value ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                _cookies[pair[..equals]] = pair[(equals + 1)..];
            }
        }
    }

    /// <summary>The session cookie's value, or null.</summary>
    public string? SessionId => _cookies.GetValueOrDefault(CookieName);

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri baseAddress, string path, HttpContent? content = null, string? rawCookieHeader = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(baseAddress, path)) { Content = content };
        var cookieHeader = rawCookieHeader ?? Cookie;
        if (cookieHeader is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookieHeader);
        }

        var response = await _http.SendAsync(request);
        Remember(response);
        return response;
    }

    public Task<HttpResponseMessage> GetAsync(Uri baseAddress, string path) => SendAsync(HttpMethod.Get, baseAddress, path);

    public Task<HttpResponseMessage> LoginAsync(Uri baseAddress, string user, string password = "demo")
        => SendAsync(HttpMethod.Post, baseAddress, "/api/login", JsonContent.Create(new { user, password }));

    public Task<HttpResponseMessage> PutAttributeAsync(Uri baseAddress, string name, string value)
        => SendAsync(HttpMethod.Put, baseAddress, "/api/attributes/" + Uri.EscapeDataString(name), new StringContent(value, Encoding.UTF8, "text/plain"));

    public Task<HttpResponseMessage> AddToCartAsync(Uri baseAddress, string item)
        => SendAsync(HttpMethod.Post, baseAddress, "/api/cart/items", JsonContent.Create(new { item }));

    public async Task<JsonElement> GetJsonAsync(Uri baseAddress, string path)
    {
        using var response = await GetAsync(baseAddress, path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path} on {baseAddress} answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The node that served a response.</summary>
    public static string ServedBy(HttpResponseMessage response)
        => Assert.Single(response.Headers.GetValues("X-Served-By"));

    private void Remember(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Set-Cookie", out var cookies))
        {
            return;
        }

        foreach (var header in cookies)
        {
            var pair = header.Split(';', 2)[0];
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                continue;
            }

            var name = pair[..equals].Trim();
            var value = pair[(equals + 1)..].Trim();
            var expired = header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase)
                || header.Contains("max-age=0", StringComparison.OrdinalIgnoreCase);
            if (expired || value.Length == 0)
            {
                _cookies.Remove(name);
            }
            else
            {
                _cookies[name] = value;
            }
        }
    }
}
