using System.Net;
using System.Net.Http.Json;
using System.Text;

namespace ClusterSession.Demo.Tests;

/// <summary>One demo (3 nodes, embedded Garnet) started as a process for the whole class.</summary>
public sealed class DemoFixture : IAsyncLifetime
{
    public DemoProcess Demo { get; private set; } = null!;

    public async Task InitializeAsync() => Demo = await DemoProcess.StartAsync(nodes: 3);

    public async Task DisposeAsync() => await Demo.DisposeAsync();
}

/// <summary>
/// The HTTP contract of issue 6, driven through the load balancer and through each node of a
/// running demo. Each test uses its own user or its own anonymous sessions, so tests do not see
/// each other's sessions.
/// </summary>
public sealed class ContractTests(DemoFixture fixture) : IClassFixture<DemoFixture>
{
    private DemoProcess Demo => fixture.Demo;

    private IEnumerable<Uri> Nodes => Enumerable.Range(1, Demo.Nodes).Select(Demo.Node);

    [Fact]
    public async Task Every_node_and_the_load_balancer_answer_healthz_and_name_the_serving_node()
    {
        using var client = new DemoClient();
        for (var k = 1; k <= Demo.Nodes; k++)
        {
            using var response = await client.GetAsync(Demo.Node(k), "/healthz");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal($"node-{k}", DemoClient.ServedBy(response));
        }

        var seen = new HashSet<string>();
        for (var i = 0; i < Demo.Nodes * 2; i++)
        {
            using var response = await client.GetAsync(Demo.LoadBalancer, "/healthz");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            seen.Add(DemoClient.ServedBy(response));
        }

        // Round robin: every node took a turn.
        Assert.Equal(Demo.Nodes, seen.Count);
    }

    [Fact]
    public async Task Login_on_the_load_balancer_rotates_the_id_keeps_attributes_and_every_node_knows_the_user()
    {
        using var client = new DemoClient();
        using (var anonymous = await client.PutAttributeAsync(Demo.LoadBalancer, "theme", "dark"))
        {
            Assert.True(anonymous.IsSuccessStatusCode, $"PUT attribute before login answered {(int)anonymous.StatusCode}");
        }

        var anonymousCookie = client.Cookie;
        Assert.NotNull(anonymousCookie);

        using (var login = await client.LoginAsync(Demo.LoadBalancer, "alice"))
        {
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }

        var loggedInCookie = client.Cookie;
        Assert.NotNull(loggedInCookie);
        Assert.NotNull(client.SessionId);
        Assert.DoesNotContain(client.SessionId, anonymousCookie, StringComparison.Ordinal);
        Assert.Contains(DemoClient.AuthCookieName + "=", loggedInCookie, StringComparison.Ordinal);

        for (var k = 1; k <= Demo.Nodes; k++)
        {
            var me = await client.GetJsonAsync(Demo.Node(k), "/api/me");
            Assert.Equal("alice", me.GetProperty("user").GetString());
            Assert.Equal($"node-{k}", me.GetProperty("node").GetString());
            Assert.Equal(1800, me.GetProperty("idleTimeoutSeconds").GetInt64());
            Assert.True(me.GetProperty("createdAt").GetDateTimeOffset() <= me.GetProperty("lastAccessedAt").GetDateTimeOffset());

            var attributes = await client.GetJsonAsync(Demo.Node(k), "/api/attributes");
            Assert.Equal("dark", attributes.GetProperty("theme").GetString());
        }

        // The pre-login id is dead everywhere: fixation protection.
        client.Cookie = anonymousCookie;
        foreach (var node in Nodes.Append(Demo.LoadBalancer))
        {
            using var me = await client.GetAsync(node, "/api/me");
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            var attributes = await client.GetJsonAsync(node, "/api/attributes");
            Assert.Empty(attributes.EnumerateObject());
        }
    }

    [Fact]
    public async Task The_authentication_cookie_is_only_a_key_to_the_ticket_in_its_own_session()
    {
        using var alice = new DemoClient();
        Assert.Equal(HttpStatusCode.OK, (await alice.LoginAsync(Demo.Node(1), "alice")).StatusCode);
        var authCookie = $"{DemoClient.AuthCookieName}={alice.Cookie!.Split("; ").Single(c => c.StartsWith(DemoClient.AuthCookieName + "=", StringComparison.Ordinal))[(DemoClient.AuthCookieName.Length + 1)..]}";

        // Without alice's session, or with another session, alice's authentication cookie finds no ticket.
        using var other = new DemoClient();
        Assert.True((await other.PutAttributeAsync(Demo.Node(2), "x", "y")).IsSuccessStatusCode);
        foreach (var cookies in new[] { authCookie, $"{authCookie}; {DemoClient.CookieName}={other.SessionId}" })
        {
            using var me = await other.SendAsync(HttpMethod.Get, Demo.Node(3), "/api/me", rawCookieHeader: cookies);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        var own = await alice.GetJsonAsync(Demo.Node(3), "/api/me");
        Assert.Equal("alice", own.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Wrong_password_is_401_and_me_without_a_session_is_401()
    {
        using var client = new DemoClient();

        using var wrong = await client.LoginAsync(Demo.LoadBalancer, "alice", "not-the-password");
        using var unknown = await client.LoginAsync(Demo.LoadBalancer, "mallory", "demo");
        using var me = await client.GetAsync(Demo.LoadBalancer, "/api/me");

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
    }

    [Fact]
    public async Task Attributes_set_on_one_node_are_read_on_every_other()
    {
        using var client = new DemoClient();
        for (var k = 1; k <= Demo.Nodes; k++)
        {
            using var put = await client.PutAttributeAsync(Demo.Node(k), $"set-on-{k}", $"value {k} ü");
            Assert.True(put.IsSuccessStatusCode);
        }

        foreach (var node in Nodes.Append(Demo.LoadBalancer))
        {
            var attributes = await client.GetJsonAsync(node, "/api/attributes");
            for (var k = 1; k <= Demo.Nodes; k++)
            {
                Assert.Equal($"value {k} ü", attributes.GetProperty($"set-on-{k}").GetString());
            }
        }
    }

    [Fact]
    public async Task Concurrent_cart_additions_through_every_node_are_all_kept()
    {
        using var client = new DemoClient();
        using (var login = await client.LoginAsync(Demo.LoadBalancer, "carol"))
        {
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }

        const int Additions = 60;
        var targets = Nodes.Append(Demo.LoadBalancer).ToArray();
        using var start = new SemaphoreSlim(0);
        var tasks = Enumerable.Range(0, Additions).Select(i => Task.Run(async () =>
        {
            await start.WaitAsync();
            using var response = await client.AddToCartAsync(targets[i % targets.Length], $"item-{i}");
            return response.StatusCode;
        })).ToArray();
        start.Release(Additions);
        var statuses = await Task.WhenAll(tasks);

        Assert.All(statuses, s => Assert.True((int)s is >= 200 and < 300, $"cart addition answered {(int)s}"));
        foreach (var node in Nodes)
        {
            var cart = await client.GetJsonAsync(node, "/api/cart");
            var items = cart.EnumerateArray().Select(e => e.GetString()).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(Enumerable.Range(0, Additions).Select(i => $"item-{i}").Order(StringComparer.Ordinal), items);
        }
    }

    [Fact]
    public async Task Logout_deletes_the_session_and_every_node_refuses_the_old_cookie()
    {
        using var client = new DemoClient();
        using (var login = await client.LoginAsync(Demo.Node(1), "bob"))
        {
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }

        using (var put = await client.PutAttributeAsync(Demo.Node(1), "note", "before logout"))
        {
            Assert.True(put.IsSuccessStatusCode);
        }

        var cookie = client.Cookie;
        using (var logout = await client.SendAsync(HttpMethod.Post, Demo.Node(Demo.Nodes), "/api/logout"))
        {
            Assert.True(logout.IsSuccessStatusCode, $"logout answered {(int)logout.StatusCode}");
        }

        foreach (var node in Nodes.Append(Demo.LoadBalancer))
        {
            client.Cookie = cookie;
            using var me = await client.GetAsync(node, "/api/me");
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);

            client.Cookie = cookie;
            var attributes = await client.GetJsonAsync(node, "/api/attributes");
            Assert.Empty(attributes.EnumerateObject());
        }
    }

    [Fact]
    public async Task Sessions_lists_each_device_and_revoking_one_logs_only_that_device_out()
    {
        const string User = "bob";
        using var laptop = new DemoClient("Laptop/1.0");
        using var phone = new DemoClient("Phone/2.0");
        using var stranger = new DemoClient("Stranger/1.0");
        Assert.Equal(HttpStatusCode.OK, (await laptop.LoginAsync(Demo.LoadBalancer, User)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await phone.LoginAsync(Demo.LoadBalancer, User)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await stranger.LoginAsync(Demo.LoadBalancer, "alice")).StatusCode);

        var sessions = (await laptop.GetJsonAsync(Demo.Node(2), "/api/sessions")).EnumerateArray().ToArray();
        var current = Assert.Single(sessions, s => s.GetProperty("current").GetBoolean());
        Assert.Equal("Laptop/1.0", current.GetProperty("userAgent").GetString());
        var phoneSession = Assert.Single(sessions, s => s.GetProperty("userAgent").GetString() == "Phone/2.0");
        Assert.False(phoneSession.GetProperty("current").GetBoolean());
        Assert.All(sessions, s =>
        {
            Assert.False(string.IsNullOrEmpty(s.GetProperty("handle").GetString()));
            _ = s.GetProperty("createdAt").GetDateTimeOffset();
            _ = s.GetProperty("lastAccessedAt").GetDateTimeOffset();
        });

        // A handle is not the session id: it cannot be used as a cookie.
        var handle = phoneSession.GetProperty("handle").GetString()!;
        Assert.NotEqual(phone.SessionId, handle);

        // Another user cannot revoke bob's device with its handle.
        using (var foreign = await stranger.SendAsync(HttpMethod.Delete, Demo.LoadBalancer, "/api/sessions/" + Uri.EscapeDataString(handle)))
        {
            Assert.False(foreign.IsSuccessStatusCode);
            Assert.True((int)foreign.StatusCode < 500);
        }

        using (var revoke = await laptop.SendAsync(HttpMethod.Delete, Demo.Node(3), "/api/sessions/" + Uri.EscapeDataString(handle)))
        {
            Assert.True(revoke.IsSuccessStatusCode, $"revoke answered {(int)revoke.StatusCode}");
        }

        foreach (var node in Nodes.Append(Demo.LoadBalancer))
        {
            using var phoneMe = await phone.GetAsync(node, "/api/me");
            Assert.Equal(HttpStatusCode.Unauthorized, phoneMe.StatusCode);
            var laptopMe = await laptop.GetJsonAsync(node, "/api/me");
            Assert.Equal(User, laptopMe.GetProperty("user").GetString());
        }

        var remaining = (await laptop.GetJsonAsync(Demo.LoadBalancer, "/api/sessions")).EnumerateArray().ToArray();
        Assert.DoesNotContain(remaining, s => s.GetProperty("handle").GetString() == handle);
        Assert.Contains(remaining, s => s.GetProperty("current").GetBoolean());
    }

    [Fact]
    public async Task Sign_out_other_devices_logs_every_other_device_out_on_every_node_and_keeps_this_one()
    {
        const string User = "carol";
        using var laptop = new DemoClient("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0");
        using var phone = new DemoClient("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1");
        using var tablet = new DemoClient("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36");
        using var other = new DemoClient();
        Assert.Equal(HttpStatusCode.OK, (await laptop.LoginAsync(Demo.Node(1), User)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await phone.LoginAsync(Demo.Node(2), User)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await tablet.LoginAsync(Demo.Node(3), User)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await other.LoginAsync(Demo.LoadBalancer, "alice")).StatusCode);

        var sessions = (await laptop.GetJsonAsync(Demo.LoadBalancer, "/api/sessions")).EnumerateArray().ToArray();
        Assert.Equal("Firefox on Windows", Assert.Single(sessions, s => s.GetProperty("current").GetBoolean()).GetProperty("device").GetString());
        Assert.Contains(sessions, s => s.GetProperty("device").GetString() == "Safari on iPhone");
        Assert.Contains(sessions, s => s.GetProperty("device").GetString() == "Chrome on Android");
        using (var page = await laptop.GetAsync(Demo.Node(2), "/"))
        {
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("id=\"revoke-others-button\"", html, StringComparison.Ordinal);
            Assert.Contains("Safari on iPhone", html, StringComparison.Ordinal);
        }

        using (var revoke = await laptop.SendAsync(HttpMethod.Post, Demo.Node(2), "/api/sessions/revoke-others"))
        {
            Assert.True(revoke.IsSuccessStatusCode, $"revoke-others answered {(int)revoke.StatusCode}");
        }

        foreach (var node in Nodes.Append(Demo.LoadBalancer))
        {
            using (var phoneMe = await phone.GetAsync(node, "/api/me"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, phoneMe.StatusCode);
            }

            using (var tabletMe = await tablet.GetAsync(node, "/api/me"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, tabletMe.StatusCode);
            }

            Assert.Equal(User, (await laptop.GetJsonAsync(node, "/api/me")).GetProperty("user").GetString());
            Assert.Equal("alice", (await other.GetJsonAsync(node, "/api/me")).GetProperty("user").GetString());
        }

        var remaining = (await laptop.GetJsonAsync(Demo.LoadBalancer, "/api/sessions")).EnumerateArray().ToArray();
        Assert.True(Assert.Single(remaining).GetProperty("current").GetBoolean());
    }

    [Fact]
    public async Task Page_shows_the_user_node_attributes_and_cart_html_encoded()
    {
        using var client = new DemoClient();
        Assert.True((await client.PutAttributeAsync(Demo.Node(1), "<b>name</b>", "<script>alert(1)</script>")).IsSuccessStatusCode);
        Assert.True((await client.AddToCartAsync(Demo.Node(2), "\"quoted\" & <tagged>")).IsSuccessStatusCode);

        using (var anonymousPage = await client.GetAsync(Demo.Node(3), "/"))
        {
            var html = await anonymousPage.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, anonymousPage.StatusCode);
            Assert.StartsWith("text/html", anonymousPage.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
            Assert.Contains("id=\"login-form\"", html, StringComparison.Ordinal);
            Assert.Contains(">node-3<", html, StringComparison.Ordinal);
            Assert.DoesNotContain("<script>alert(1)</script>", html, StringComparison.Ordinal);
            Assert.DoesNotContain("<tagged>", html, StringComparison.Ordinal);
            Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.LoginAsync(Demo.Node(1), "carol")).StatusCode);
        using var page = await client.GetAsync(Demo.Node(2), "/");
        var loggedIn = await page.Content.ReadAsStringAsync();
        Assert.Contains("carol", loggedIn, StringComparison.Ordinal);
        Assert.Contains("id=\"logout-button\"", loggedIn, StringComparison.Ordinal);
        Assert.Contains("id=\"sessions\"", loggedIn, StringComparison.Ordinal);
        Assert.Contains("id=\"created-at\"", loggedIn, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"login-form\"", loggedIn, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadCookies => new()
    {
        { "empty", $"{DemoClient.CookieName}=" },
        { "garbage", $"{DemoClient.CookieName}=not a session id at all" },
        { "oversized", $"{DemoClient.CookieName}={new string('A', 8000)}" },
        { "forged well-formed id", $"{DemoClient.CookieName}={new string('A', 32)}" },
        { "forged random id", $"{DemoClient.CookieName}={Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_')}abcdefghij" },
        { "url-encoded junk", $"{DemoClient.CookieName}=%00%ff%2e%2e%2f" },
        { "separators", $"{DemoClient.CookieName}=a,b;c=d;;=;{DemoClient.CookieName}" },
        { "duplicate names", $"{DemoClient.CookieName}=AAAA; {DemoClient.CookieName}=BBBB" },
        { "quoted", $"{DemoClient.CookieName}=\"{new string('B', 32)}\"" },
        { "no value at all", DemoClient.CookieName },
    };

    [Theory]
    [MemberData(nameof(BadCookies))]
    public async Task Bad_forged_or_stale_cookies_never_cause_a_server_error(string description, string cookieHeader)
    {
        using var client = new DemoClient();
        foreach (var target in new[] { Demo.LoadBalancer, Demo.Node(1) })
        {
            foreach (var (method, path, body) in Requests())
            {
                using var response = await client.SendAsync(method, target, path, body?.Invoke(), cookieHeader);
                Assert.True((int)response.StatusCode < 500, $"{description}: {method} {path} answered {(int)response.StatusCode}");
                Assert.StartsWith("node-", DemoClient.ServedBy(response), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_stale_cookie_of_a_logged_out_session_never_causes_a_server_error()
    {
        using var client = new DemoClient();
        Assert.Equal(HttpStatusCode.OK, (await client.LoginAsync(Demo.LoadBalancer, "alice")).StatusCode);
        var stale = client.Cookie!;
        Assert.True((await client.SendAsync(HttpMethod.Post, Demo.LoadBalancer, "/api/logout")).IsSuccessStatusCode);

        foreach (var (method, path, body) in Requests())
        {
            using var response = await client.SendAsync(method, Demo.LoadBalancer, path, body?.Invoke(), stale);
            Assert.True((int)response.StatusCode < 500, $"stale: {method} {path} answered {(int)response.StatusCode}");
        }
    }

    private static IEnumerable<(HttpMethod Method, string Path, Func<HttpContent>? Body)> Requests()
    {
        yield return (HttpMethod.Get, "/", null);
        yield return (HttpMethod.Get, "/api/me", null);
        yield return (HttpMethod.Get, "/api/attributes", null);
        yield return (HttpMethod.Get, "/api/cart", null);
        yield return (HttpMethod.Get, "/api/sessions", null);
        yield return (HttpMethod.Put, "/api/attributes/color", () => new StringContent("blue", Encoding.UTF8, "text/plain"));
        yield return (HttpMethod.Post, "/api/cart/items", () => JsonContent.Create(new { item = "apple" }));
        yield return (HttpMethod.Delete, "/api/sessions/some-handle", null);
        yield return (HttpMethod.Post, "/api/sessions/revoke-others", null);
        yield return (HttpMethod.Post, "/api/logout", null);
        yield return (HttpMethod.Post, "/api/login", () => new StringContent("{not json", Encoding.UTF8, "application/json"));
        yield return (HttpMethod.Post, "/api/login", () => JsonContent.Create(new { user = "alice", password = "demo" }));
    }

}
