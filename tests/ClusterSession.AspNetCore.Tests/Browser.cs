using System.Net;
using System.Net.Http.Headers;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// One client with its own cookie jar that follows it across app instances (browsers share cookies
/// across ports of one host, and a load balancer makes several servers one origin).
/// </summary>
internal sealed class Browser : IDisposable
{
    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        UseCookies = false,
        AllowAutoRedirect = false,

        // Lets the bad-input tests send raw non-ASCII bytes, as a hostile client can.
        RequestHeaderEncodingSelector = static (_, _) => System.Text.Encoding.UTF8,
    });

    public Dictionary<string, string> Cookies { get; } = new(StringComparer.Ordinal);

    public string UserAgent { get; init; } = "TestBrowser/1.0";

    public Task<Response> GetAsync(Uri baseAddress, string path) => SendAsync(HttpMethod.Get, baseAddress, path);

    public Task<Response> PostAsync(Uri baseAddress, string path) => SendAsync(HttpMethod.Post, baseAddress, path);

    public async Task<Response> SendAsync(HttpMethod method, Uri baseAddress, string path, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(baseAddress, path));
        request.Headers.UserAgent.ParseAdd(UserAgent);
        if (Cookies.Count > 0)
        {
            request.Headers.Add("Cookie", string.Join("; ", Cookies.Select(c => c.Key + "=" + c.Value)));
        }

        configure?.Invoke(request);
        using var response = await Client.SendAsync(request);
        var setCookies = response.Headers.TryGetValues("Set-Cookie", out var values) ? values.ToList() : [];
        foreach (var header in setCookies)
        {
            var nameValue = header.Split(';')[0];
            var eq = nameValue.IndexOf('=');
            var name = nameValue[..eq];
            var value = nameValue[(eq + 1)..];
            if (value.Length == 0 || header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase))
            {
                Cookies.Remove(name);
            }
            else
            {
                Cookies[name] = value;
            }
        }

        return new Response(response.StatusCode, await response.Content.ReadAsStringAsync(), setCookies, response.Headers);
    }

    public void Dispose()
    {
    }
}

internal sealed record Response(HttpStatusCode Status, string Body, IReadOnlyList<string> SetCookies, HttpResponseHeaders Headers)
{
    public string? SetCookie(string name) => SetCookies.FirstOrDefault(c => c.StartsWith(name + "=", StringComparison.Ordinal));
}
