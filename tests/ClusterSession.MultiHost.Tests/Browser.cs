using System.Net;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// One client with one cookie jar that it takes from host to host, as a browser behind a load balancer
/// does (the hosts are one origin to it).
/// </summary>
internal sealed class Browser
{
    private static readonly HttpClient Client = new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    public Dictionary<string, string> Cookies { get; private set; } = new(StringComparer.Ordinal);

    /// <summary>A copy of the jar, e.g. to replay cookies a sign-out told the browser to drop.</summary>
    public Browser Clone() => new() { Cookies = new Dictionary<string, string>(Cookies, StringComparer.Ordinal) };

    public Task<(HttpStatusCode Status, string Body)> GetAsync(AppHost host, string path) => SendAsync(HttpMethod.Get, host, path, content: null);

    public Task<(HttpStatusCode Status, string Body)> PostAsync(AppHost host, string path, IEnumerable<KeyValuePair<string, string>>? form = null)
        => SendAsync(HttpMethod.Post, host, path, new FormUrlEncodedContent(form ?? []));

    private async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, AppHost host, string path, HttpContent? content)
    {
        using var request = new HttpRequestMessage(method, new Uri(host.Address, path)) { Content = content };
        if (Cookies.Count > 0)
        {
            request.Headers.Add("Cookie", string.Join("; ", Cookies.Select(c => c.Key + "=" + c.Value)));
        }

        using var response = await Client.SendAsync(request);
        foreach (var header in response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [])
        {
            var nameValue = header.Split(';')[0];
            var eq = nameValue.IndexOf('=', StringComparison.Ordinal);
            var (name, value) = (nameValue[..eq], nameValue[(eq + 1)..]);
            if (value.Length == 0 || header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase))
            {
                Cookies.Remove(name);
            }
            else
            {
                Cookies[name] = value;
            }
        }

        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
