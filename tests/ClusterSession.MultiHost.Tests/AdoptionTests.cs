using System.Net;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Adopting ClusterSession signs no one out (issue 21): one app as a process, first on ASP.NET Core's own session over
/// AddStackExchangeRedisCache with self-contained cookie authentication, then restarted on ClusterSession with both imports
/// on, over the same real redis-server and the same Data Protection keys directory.
/// </summary>
[Collection(MultiHostRedis.Name)]
public sealed class AdoptionTests(RedisServerFixture redis, ITestOutputHelper output) : IAsyncLifetime
{
    private const int Users = 20;
    private const int Guests = 5;
    private const string SessionCookie = ".AspNetCore.Session";
    private const string AuthCookie = ".Adoption.Auth";
    private const string ClusterCookie = ".ClusterSession";

    private readonly string _prefix = "adopt-" + Guid.NewGuid().ToString("N")[..8] + ":";
    private readonly string _keys = Path.Combine(Path.GetTempPath(), "cs-adopt-keys-" + Guid.NewGuid().ToString("N")[..12]);
    private ConnectionMultiplexer? _redis;

    private IServer Server => _redis!.GetServers()[0];

    private IDatabase Db => _redis!.GetDatabase();

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_keys);
        _redis = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
    }

    public async Task DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        Directory.Delete(_keys, recursive: true);
    }

    [Fact]
    public async Task Users_of_the_built_in_session_and_cookie_authentication_stay_signed_in_with_their_values_on_ClusterSession()
    {
        var users = Enumerable.Range(0, Users).Select(i => ("user" + i, new Browser())).ToArray();
        var guests = Enumerable.Range(0, Guests).Select(i => ("guest" + i, new Browser())).ToArray();
        Dictionary<string, string> oldCookies;
        await using (var before = await StartAsync("builtin"))
        {
            foreach (var (name, browser) in users)
            {
                Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(before, "/signin/" + name)).Status);
                Assert.Equal((HttpStatusCode.OK, Expected(name, visits: 2)), await browser.GetAsync(before, "/me"));
            }

            foreach (var (name, browser) in guests)
            {
                Assert.Equal(HttpStatusCode.NoContent, (await browser.PostAsync(before, $"/session/note/{name}")).Status);
            }

            oldCookies = new Dictionary<string, string>(users[0].Item2.Cookies, StringComparer.Ordinal);
        }

        Assert.Equal(Users + Guests, BuiltInKeys().Length);
        Assert.All(users, u => Assert.False(u.Item2.Cookies.ContainsKey(ClusterCookie)));

        await using var after = await StartAsync("cluster");
        var kept = 0;
        var failed = 0;
        var remaining = Users + Guests;
        var importedAuth = new List<string>();
        foreach (var (name, browser) in users)
        {
            var legacyAuth = browser.Cookies[AuthCookie];
            importedAuth.Add(legacyAuth);
            var (status, body) = await browser.GetAsync(after, "/me");
            failed += (int)status >= 500 ? 1 : 0;
            kept += status == HttpStatusCode.OK && body == Expected(name, visits: 3) ? 1 : 0;
            remaining--;
            Assert.Equal(remaining, BuiltInKeys().Length);

            // The browser now holds ClusterSession's cookie and an authentication cookie holding only a reference.
            Assert.True(browser.Cookies.ContainsKey(ClusterCookie));
            Assert.False(browser.Cookies.ContainsKey(SessionCookie));
            Assert.True(browser.Cookies[AuthCookie].Length < legacyAuth.Length, "The authentication cookie still holds the whole ticket.");

            // And the next request is served from ClusterSession alone.
            Assert.Equal((HttpStatusCode.OK, Expected(name, visits: 4)), await browser.GetAsync(after, "/me"));
        }

        foreach (var (name, browser) in guests)
        {
            Assert.Equal((HttpStatusCode.OK, "note=" + name), await browser.GetAsync(after, "/session"));
        }

        output.WriteLine($"Adoption run: {kept} of {Users} users kept signed in with their values, {failed} requests failed; built-in cache keys left: {BuiltInKeys().Length}.");
        Assert.Equal(Users, kept);
        Assert.Equal(0, failed);
        Assert.Empty(BuiltInKeys());

        // The old cookies, replayed: the built-in session was deleted, so nothing of it comes back.
        var replay = new Browser();
        foreach (var (key, value) in oldCookies)
        {
            replay.Cookies[key] = value;
        }

        var replayed = await replay.GetAsync(after, "/session");
        Assert.Equal(HttpStatusCode.OK, replayed.Status);
        Assert.DoesNotContain("cart", replayed.Body, StringComparison.Ordinal);

        // An old authentication cookie is accepted once: replayed after its import, alone, it signs no one in.
        foreach (var legacyAuth in importedAuth.Take(3))
        {
            var thief = new Browser();
            thief.Cookies[AuthCookie] = legacyAuth;
            Assert.Equal(HttpStatusCode.Unauthorized, (await thief.GetAsync(after, "/me")).Status);
        }

        // Nothing logged names a legacy cookie or cache key.
        Assert.Contains("imported from the built-in session", after.Output, StringComparison.Ordinal);
        foreach (var value in oldCookies.Values)
        {
            Assert.DoesNotContain(value, after.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Garbage_tampered_foreign_and_vanished_legacy_cookies_get_a_fresh_session_and_never_a_server_error()
    {
        var victims = Enumerable.Range(0, 3).Select(_ => new Browser()).ToArray();
        await using (var before = await StartAsync("builtin"))
        {
            for (var i = 0; i < victims.Length; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await victims[i].PostAsync(before, "/signin/victim" + i)).Status);
            }
        }

        Assert.Equal(victims.Length, BuiltInKeys().Length);
        await using var after = await StartAsync("cluster");
        var legacy = victims[2].Cookies[SessionCookie];
        var legacyAuth = victims[2].Cookies[AuthCookie];
        var cases = new List<(string Case, Dictionary<string, string> Cookies)>
        {
            ("garbage session cookie", new() { [SessionCookie] = "not-a-cookie!!" }),
            ("empty-ish session cookie", new() { [SessionCookie] = "AA" }),
            ("oversized session cookie", new() { [SessionCookie] = new string('A', 3000) }),
            ("tampered session cookie", new() { [SessionCookie] = Tamper(legacy) }),
            ("truncated session cookie", new() { [SessionCookie] = legacy[..(legacy.Length / 2)] }),
            ("foreign session cookie", new() { [SessionCookie] = ForeignSessionCookie() }),
            ("garbage auth cookie", new() { [AuthCookie] = "garbage" }),
            ("tampered auth cookie", new() { [AuthCookie] = Tamper(legacyAuth) }),
            ("truncated auth cookie", new() { [AuthCookie] = legacyAuth[..(legacyAuth.Length / 2)] }),
        };

        var failed = 0;
        foreach (var (name, cookies) in cases)
        {
            var browser = new Browser();
            foreach (var (key, value) in cookies)
            {
                browser.Cookies[key] = value;
            }

            var me = await browser.GetAsync(after, "/me");
            Assert.True(me.Status == HttpStatusCode.Unauthorized, $"{name}: /me answered {me.Status}");
            var write = await browser.PostAsync(after, "/session/fresh/yes");
            failed += (int)write.Status >= 500 ? 1 : 0;
            Assert.True(write.Status == HttpStatusCode.NoContent, $"{name}: the write answered {write.Status}");
            Assert.Equal((HttpStatusCode.OK, "fresh=yes"), await browser.GetAsync(after, "/session"));
            Assert.False(browser.Cookies.ContainsKey(SessionCookie), $"{name}: the legacy session cookie was not expired");
        }

        // victim0's cache entry vanishes meanwhile (expired, evicted); victim1's is corrupted in the cache; victim2's stays.
        var db = Db;
        var victimKeys = victims.Select(BuiltInKey).ToArray();
        Assert.True(await db.KeyDeleteAsync(victimKeys[0]));
        await db.HashSetAsync(victimKeys[1], "data", new byte[] { 2, 0, 0, 9, 1, 2 });
        foreach (var victim in victims[..2])
        {
            var (status, body) = await victim.GetAsync(after, "/session");
            failed += (int)status >= 500 ? 1 : 0;
            Assert.Equal((HttpStatusCode.OK, string.Empty), (status, body));
        }

        Assert.False(await db.KeyExistsAsync(victimKeys[1]));
        Assert.True(await db.KeyExistsAsync(victimKeys[2]));
        output.WriteLine($"Bad input: {cases.Count + 2} broken legacy cookies or cache entries, {failed} requests failed with a server error.");
        Assert.Equal(0, failed);
        Assert.Single(BuiltInKeys());
        Assert.Contains("could not be imported", after.Output, StringComparison.Ordinal);
    }

    private static string Expected(string user, int visits) => $"{user}|team-of-{user}|cart-of-{user}|000102FEFF{user.Length:X2}|{visits}";

    /// <summary>The cookie with one character in its middle changed, as a client that tampers with it would send it.</summary>
    private static string Tamper(string cookie)
    {
        var chars = cookie.ToCharArray();
        var middle = chars.Length / 2;
        chars[middle] = chars[middle] == 'A' ? 'B' : 'A';
        return new string(chars);
    }

    /// <summary>The cache key of a browser's built-in session: its cookie, unprotected with the app's key ring as the built-in does.</summary>
    private RedisKey BuiltInKey(Browser browser)
    {
        var protector = DataProtectionProvider.Create(new DirectoryInfo(_keys), b => b.SetApplicationName("adoption-test-app")).CreateProtector("SessionMiddleware");
        var cookie = Uri.UnescapeDataString(browser.Cookies[SessionCookie]);
        var padded = cookie + new string('=', (4 - (cookie.Length % 4)) % 4);
        return _prefix + "builtin:" + Encoding.UTF8.GetString(protector.Unprotect(Convert.FromBase64String(padded)));
    }

    /// <summary>A well-made built-in session cookie of another application (another key ring).</summary>
    private static string ForeignSessionCookie()
    {
        var other = Path.Combine(Path.GetTempPath(), "cs-adopt-foreign-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var protector = DataProtectionProvider.Create(new DirectoryInfo(other)).CreateProtector("SessionMiddleware");
            return Convert.ToBase64String(protector.Protect(Encoding.UTF8.GetBytes(Guid.NewGuid().ToString()))).TrimEnd('=');
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }

    private RedisKey[] BuiltInKeys() => Server.Keys(pattern: _prefix + "builtin:*").ToArray();

    private Task<AppHost> StartAsync(string mode) => AppHost.StartAsync(
        _ => ["--Mode", mode, "--Redis", redis.Configuration, "--Prefix", _prefix, "--KeysDirectory", _keys],
        appDll: AppHost.AdoptionAppDll);
}
