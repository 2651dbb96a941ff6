using System.Net;
using System.Text.RegularExpressions;

namespace ClusterSession.Packaging.Tests;

/// <summary>
/// A browser's view of the quick start: it holds the cookies the app set and sends them to whichever instance
/// it is told (as a load balancer would route it), reads the page and posts its forms with the antiforgery
/// token the page carries. Cookies are kept by hand so that they can be replayed after a sign-out.
/// </summary>
internal sealed partial class QuickStartBrowser : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, UseProxy = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    private readonly SortedDictionary<string, string> _cookies = new(StringComparer.Ordinal);

    /// <summary>What the page says.</summary>
    public sealed record Page(string? User, int Visits, string TokenField, string Token)
    {
        public bool SignedIn => User is not null;
    }

    /// <summary>Every cookie held, as a <c>Cookie</c> request header.</summary>
    public string CookieHeader => string.Join("; ", _cookies.Select(c => c.Key + "=" + c.Value));

    /// <summary>The value of the cookie <paramref name="name"/>, or null when none is held.</summary>
    public string? Cookie(string name) => _cookies.GetValueOrDefault(name);

    /// <summary>GET / from <paramref name="instance"/>; the page must be there (200).</summary>
    public async Task<Page> GetPageAsync(Uri instance, string? rawCookieHeader = null)
    {
        using var response = await SendAsync(HttpMethod.Get, instance, "/", content: null, rawCookieHeader);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET / answered {(int)response.StatusCode}: {html}");
        var state = PageState().Match(html);
        var form = TokenInput().Match(html);
        Assert.True(state.Success && form.Success, "The page does not show the sign-in state, the visit count and a form with a token:\n" + html);
        return new Page(
            state.Groups["user"].Success ? WebUtility.HtmlDecode(state.Groups["user"].Value) : null,
            int.Parse(state.Groups["visits"].Value, System.Globalization.CultureInfo.InvariantCulture),
            form.Groups["field"].Value,
            form.Groups["token"].Value);
    }

    /// <summary>Submits the page's form to <paramref name="path"/> on <paramref name="instance"/>; returns the status code.</summary>
    public async Task<HttpStatusCode> PostFormAsync(Uri instance, string path, Page? page, params (string Name, string Value)[] fields)
    {
        IEnumerable<KeyValuePair<string, string>> values = fields.Select(f => KeyValuePair.Create(f.Name, f.Value));
        if (page is not null)
        {
            values = values.Append(KeyValuePair.Create(page.TokenField, page.Token));
        }

        using var content = new FormUrlEncodedContent(values);
        using var response = await SendAsync(HttpMethod.Post, instance, path, content, rawCookieHeader: null);
        if (response.StatusCode == HttpStatusCode.Redirect)
        {
            Assert.Equal("/", response.Headers.Location?.OriginalString);
        }

        return response.StatusCode;
    }

    public void Dispose() => _http.Dispose();

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri instance, string path, HttpContent? content, string? rawCookieHeader)
    {
        using var request = new HttpRequestMessage(method, new Uri(instance, path)) { Content = content };
        var cookies = rawCookieHeader ?? CookieHeader;
        if (cookies.Length > 0)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookies);
        }

        var response = await _http.SendAsync(request);
        if (rawCookieHeader is null && response.Headers.TryGetValues("Set-Cookie", out var setCookies))
        {
            foreach (var setCookie in setCookies)
            {
                var pair = setCookie.Split(';', 2)[0];
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                var (name, value) = (pair[..equals].Trim(), pair[(equals + 1)..].Trim());
                var expired = setCookie.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase) || value.Length == 0;
                if (expired)
                {
                    _cookies.Remove(name);
                }
                else
                {
                    _cookies[name] = value;
                }
            }
        }

        return response;
    }

    [GeneratedRegex(@"<p>(Not signed in|Signed in as (?<user>[^<]*?))\. Visits in this session: (?<visits>\d+)\.</p>")]
    private static partial Regex PageState();

    [GeneratedRegex(@"<input type=hidden name=(?<field>[^ >]+) value=(?<token>[^ >]+)>")]
    private static partial Regex TokenInput();
}
