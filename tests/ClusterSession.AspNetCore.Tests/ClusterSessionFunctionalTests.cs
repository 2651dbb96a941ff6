using System.Net;
using System.Text.Json;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// Behaviour of ClusterSession in real Kestrel apps sharing one store; inherited once per store
/// (in-memory, Redis) so that every behaviour holds on each.
/// </summary>
public abstract class ClusterSessionFunctionalTests : IAsyncLifetime
{
    private const string CookieName = ".ClusterSession";
    private const string Firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    private const string SafariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    private const string ChromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    private AppCluster? _cluster;

    /// <summary>Creates an empty store that no other test sees.</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync();

    private protected AppCluster Cluster => _cluster!;

    private protected ObservedStore Store => Cluster.Store;

    public async Task InitializeAsync() => _cluster = await AppCluster.StartAsync(await CreateStoreAsync(), instances: 3);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task Request_without_a_session_id_that_never_touches_the_session_makes_no_store_call()
    {
        var browser = new Browser();

        var response = await browser.GetAsync(Cluster[1], "/noop");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(0, Store.TotalCalls);
        Assert.Empty(response.SetCookies);
    }

    [Fact]
    public async Task Request_with_a_session_id_that_never_touches_the_session_writes_nothing_and_sets_no_cookie()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Store.ResetCounts();

        var response = await browser.GetAsync(Cluster[1], "/noop");

        // At most the touch after the response (a load, see SlidingExpiryTests); never a write.
        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(0, Store.Writes);
        Assert.True(Store.Calls("load") <= 1);
        Assert.Empty(response.SetCookies);
    }

    [Fact]
    public async Task Session_written_on_one_instance_is_read_on_the_others()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/color/blue");

        Assert.Equal("blue", (await browser.GetAsync(Cluster[1], "/s/get/color")).Body);
        Assert.Equal("blue", (await browser.GetAsync(Cluster[2], "/s/get/color")).Body);
    }

    [Fact]
    public async Task Read_only_request_loads_once_and_writes_nothing()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Store.ResetCounts();

        var response = await browser.GetAsync(Cluster[1], "/s/keys");

        Assert.Equal("a", response.Body);
        Assert.Equal(1, Store.Calls("load"));
        Assert.Equal(0, Store.Writes);
        Assert.Empty(response.SetCookies);
    }

    [Fact]
    public async Task New_session_cookie_is_http_only_lax_root_path_and_not_secure_over_http()
    {
        var browser = new Browser();
        var response = await browser.PostAsync(Cluster[0], "/s/set/a/1");

        var cookie = response.SetCookie(CookieName);
        Assert.NotNull(cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", cookie.Replace("samesite", "", StringComparison.OrdinalIgnoreCase), StringComparison.OrdinalIgnoreCase);
        Assert.True(SessionId.IsWellFormed(browser.Cookies[CookieName]));
    }

    [Fact]
    public async Task Cookie_is_sent_only_when_the_session_is_new_or_its_id_changed()
    {
        var browser = new Browser();
        Assert.NotNull((await browser.PostAsync(Cluster[0], "/s/set/a/1")).SetCookie(CookieName));

        Assert.Empty((await browser.PostAsync(Cluster[1], "/s/set/b/2")).SetCookies);
        Assert.Empty((await browser.GetAsync(Cluster[2], "/s/get/a")).SetCookies);

        var before = browser.Cookies[CookieName];
        Assert.NotNull((await browser.PostAsync(Cluster[0], "/c/renew")).SetCookie(CookieName));
        Assert.NotEqual(before, browser.Cookies[CookieName]);
    }

    [Fact]
    public async Task Read_of_a_new_session_stores_nothing_and_sends_no_cookie()
    {
        var browser = new Browser();
        var response = await browser.GetAsync(Cluster[0], "/s/get/a");

        Assert.Equal("(none)", response.Body);
        Assert.Empty(response.SetCookies);
        Assert.Equal(0, Store.TotalCalls);
    }

    [Fact]
    public async Task ISession_set_get_remove_clear_and_keys_behave_as_the_built_in_session()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        await browser.PostAsync(Cluster[1], "/s/set/b/2");
        Assert.Equal("1", (await browser.PostAsync(Cluster[2], "/s/int/n")).Body);
        Assert.Equal("2", (await browser.PostAsync(Cluster[0], "/s/int/n")).Body);
        Assert.Equal("a,b,n", (await browser.GetAsync(Cluster[1], "/s/keys")).Body);

        await browser.PostAsync(Cluster[2], "/s/remove/a");
        Assert.Equal("(none)", (await browser.GetAsync(Cluster[0], "/s/get/a")).Body);
        Assert.Equal("b,n", (await browser.GetAsync(Cluster[1], "/s/keys")).Body);

        await browser.PostAsync(Cluster[2], "/s/clear");
        Assert.Equal(string.Empty, (await browser.GetAsync(Cluster[0], "/s/keys")).Body);
    }

    [Fact]
    public async Task ISession_load_commit_id_and_byte_copy_behave_as_the_built_in_session()
    {
        var browser = new Browser();
        Assert.Equal("available", (await browser.GetAsync(Cluster[0], "/s/load")).Body);
        Assert.Equal("committed", (await browser.PostAsync(Cluster[0], "/s/commit/k/v")).Body);
        Assert.Equal("v", (await browser.GetAsync(Cluster[1], "/s/get/k")).Body);
        Assert.Equal("stable", (await browser.GetAsync(Cluster[2], "/s/id-stable")).Body);
        Assert.Equal("123", (await browser.PostAsync(Cluster[2], "/s/bytes/raw")).Body);
    }

    [Theory]
    [InlineData(false, "")]
    [InlineData(true, "")]
    [InlineData(true, "?loadFirst=true")]
    public async Task LoadAsync_with_a_cancelled_token_throws_with_or_without_a_session_and_when_loaded_already(bool withSession, string query)
    {
        var browser = new Browser();
        if (withSession)
        {
            await browser.PostAsync(Cluster[0], "/s/set/a/1");
        }

        var response = await browser.GetAsync(Cluster[1], "/s/load-cancelled" + query);

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal("cancelled,cancelled", response.Body);
    }

    [Fact]
    public async Task Endpoint_that_throws_after_changing_the_session_still_saves_the_change_as_the_built_in_session_does()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");

        var failed = await browser.PostAsync(Cluster[1], "/s/set-then-throw/b/2");

        Assert.Equal(HttpStatusCode.InternalServerError, failed.Status);
        Assert.Equal("a,b", (await browser.GetAsync(Cluster[2], "/s/keys")).Body);
    }

    [Fact]
    public async Task Typed_values_round_trip_across_instances()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/c/set/item/book");
        Assert.Equal("book", (await browser.GetAsync(Cluster[1], "/c/get/item")).Body);
    }

    [Fact]
    public async Task Sign_in_on_one_instance_is_seen_on_the_others_and_rotates_the_session_id()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/cart/3");
        var anonymousId = browser.Cookies[CookieName];

        var login = await browser.PostAsync(Cluster[1], "/login/alice");

        Assert.Equal(HttpStatusCode.OK, login.Status);
        Assert.NotNull(login.SetCookie(CookieName));
        Assert.NotEqual(anonymousId, browser.Cookies[CookieName]);
        Assert.Equal("alice", (await browser.GetAsync(Cluster[2], "/me")).Body);
        Assert.Equal("3", (await browser.GetAsync(Cluster[0], "/s/get/cart")).Body);
        Assert.Equal("alice|stored", (await browser.GetAsync(Cluster[0], "/c/info")).Body);

        // Session fixation: whoever knew the anonymous id holds nothing now.
        var attacker = new Browser();
        attacker.Cookies[CookieName] = anonymousId;
        Assert.Equal("(none)", (await attacker.GetAsync(Cluster[0], "/s/get/cart")).Body);
    }

    [Fact]
    public async Task Authentication_ticket_lives_in_the_session_so_a_stolen_auth_cookie_alone_is_useless()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/login/alice");
        var thief = new Browser();
        foreach (var (name, value) in browser.Cookies.Where(c => c.Key != CookieName))
        {
            thief.Cookies[name] = value;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await thief.GetAsync(Cluster[1], "/me")).Status);
        Assert.Equal("alice", (await browser.GetAsync(Cluster[1], "/me")).Body);
    }

    [Fact]
    public async Task Session_keeps_only_a_digest_of_the_ticket_reference_so_a_store_reader_cannot_rebuild_the_auth_cookie()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/login/alice");

        var stored = await Store.LoadAsync(browser.Cookies[CookieName]);

        Assert.NotNull(stored);
        Assert.False(stored.Attributes.ContainsKey("__cs.tk"), "The ticket reference is kept in clear.");
        Assert.Equal(32, stored.Attributes["__cs.tkh"].Length);
        Assert.Equal("alice", (await browser.GetAsync(Cluster[1], "/me")).Body);
    }

    [Fact]
    public async Task Sign_out_invalidates_the_session_and_expires_its_cookie()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/login/alice");
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var id = browser.Cookies[CookieName];

        var logout = await browser.PostAsync(Cluster[1], "/logout");

        Assert.Contains(logout.SetCookies, c => c.StartsWith(CookieName + "=;", StringComparison.Ordinal));
        Assert.Null(await Store.Inner.LoadAsync(id));
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(Cluster[2], "/me")).Status);
    }

    [Fact]
    public async Task Logout_everywhere_ends_every_session_of_the_principal_on_every_instance()
    {
        var laptop = new Browser { UserAgent = "Laptop/1.0" };
        var phone = new Browser { UserAgent = "Phone/1.0" };
        var other = new Browser();
        await laptop.PostAsync(Cluster[0], "/login/alice");
        await phone.PostAsync(Cluster[1], "/login/alice");
        await other.PostAsync(Cluster[2], "/login/bob");

        var list = JsonSerializer.Deserialize<List<SessionInfo>>((await laptop.GetAsync(Cluster[2], "/c/sessions")).Body, JsonSerializerOptions.Web)!;
        Assert.Equal(2, list.Count);
        Assert.Single(list, s => s.IsCurrent && s.UserAgent == "Laptop/1.0");
        Assert.Single(list, s => !s.IsCurrent && s.UserAgent == "Phone/1.0");
        Assert.All(list, s => Assert.DoesNotContain(s.Handle, laptop.Cookies.Values.Concat(phone.Cookies.Values)));

        Assert.Equal("2", (await laptop.PostAsync(Cluster[1], "/c/revoke-all")).Body);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await phone.GetAsync(Cluster[i], "/me")).Status);
            Assert.Equal(HttpStatusCode.Unauthorized, (await laptop.GetAsync(Cluster[i], "/me")).Status);
            Assert.Equal("bob", (await other.GetAsync(Cluster[i], "/me")).Body);
        }
    }

    [Fact]
    public async Task Sign_out_other_devices_ends_every_other_session_of_the_user_on_every_instance_and_keeps_this_one()
    {
        var laptop = new Browser { UserAgent = Firefox };
        var phone = new Browser { UserAgent = SafariIPhone };
        var tablet = new Browser { UserAgent = ChromeAndroid };
        var bob = new Browser();
        await laptop.PostAsync(Cluster[0], "/login/alice");
        await phone.PostAsync(Cluster[1], "/login/alice");
        await tablet.PostAsync(Cluster[2], "/login/alice");
        await bob.PostAsync(Cluster[0], "/login/bob");
        await laptop.PostAsync(Cluster[0], "/s/set/a/1");

        var revoke = await laptop.PostAsync(Cluster[1], "/c/revoke-others");

        Assert.Equal(HttpStatusCode.OK, revoke.Status);
        Assert.Equal("2", revoke.Body);
        Assert.Empty(revoke.SetCookies);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await phone.GetAsync(Cluster[i], "/me")).Status);
            Assert.Equal(HttpStatusCode.Unauthorized, (await tablet.GetAsync(Cluster[i], "/me")).Status);
            Assert.Equal("alice", (await laptop.GetAsync(Cluster[i], "/me")).Body);
            Assert.Equal("1", (await laptop.GetAsync(Cluster[i], "/s/get/a")).Body);
            Assert.Equal("bob", (await bob.GetAsync(Cluster[i], "/me")).Body);
        }

        var left = JsonSerializer.Deserialize<List<SessionInfo>>((await laptop.GetAsync(Cluster[2], "/c/sessions")).Body, JsonSerializerOptions.Web)!;
        Assert.True(Assert.Single(left).IsCurrent);
        Assert.Equal("0", (await laptop.PostAsync(Cluster[0], "/c/revoke-others")).Body);
    }

    [Fact]
    public async Task Session_list_names_each_device_as_a_person_recognises_it_and_hides_the_address_by_default()
    {
        var laptop = new Browser { UserAgent = Firefox };
        var phone = new Browser { UserAgent = SafariIPhone };
        await laptop.PostAsync(Cluster[0], "/login/dave");
        await phone.PostAsync(Cluster[1], "/login/dave");

        var list = JsonSerializer.Deserialize<List<SessionInfo>>((await laptop.GetAsync(Cluster[2], "/c/sessions")).Body, JsonSerializerOptions.Web)!;

        Assert.Equal(2, list.Count);
        Assert.Equal("Firefox on Windows", Assert.Single(list, s => s.IsCurrent).Device);
        Assert.Equal("Safari on iPhone", Assert.Single(list, s => !s.IsCurrent).Device);
        Assert.All(list, s => Assert.Null(s.ClientAddress));
        Assert.All(list, s => Assert.True(s.CreatedAt <= s.LastAccessedAt && s.LastAccessedAt < s.ExpiresAt));
    }

    [Fact]
    public async Task Revoking_one_session_by_handle_logs_only_that_device_out()
    {
        var laptop = new Browser { UserAgent = "Laptop/1.0" };
        var phone = new Browser { UserAgent = "Phone/1.0" };
        await laptop.PostAsync(Cluster[0], "/login/alice");
        await phone.PostAsync(Cluster[1], "/login/alice");
        var list = JsonSerializer.Deserialize<List<SessionInfo>>((await laptop.GetAsync(Cluster[2], "/c/sessions")).Body, JsonSerializerOptions.Web)!;
        var phoneHandle = list.Single(s => !s.IsCurrent).Handle;

        Assert.Equal("True", (await laptop.PostAsync(Cluster[0], "/c/revoke/" + phoneHandle)).Body);

        Assert.Equal(HttpStatusCode.Unauthorized, (await phone.GetAsync(Cluster[2], "/me")).Status);
        Assert.Equal("alice", (await laptop.GetAsync(Cluster[2], "/me")).Body);
        Assert.Equal("False", (await laptop.PostAsync(Cluster[0], "/c/revoke/" + phoneHandle)).Body);
    }

    [Fact]
    public async Task Renewing_the_id_keeps_the_data_and_kills_the_old_id()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var oldId = browser.Cookies[CookieName];

        await browser.PostAsync(Cluster[1], "/c/renew");

        Assert.NotEqual(oldId, browser.Cookies[CookieName]);
        Assert.Equal("1", (await browser.GetAsync(Cluster[2], "/s/get/a")).Body);
        Assert.Null(await Store.Inner.LoadAsync(oldId));
    }

    [Fact]
    public async Task Invalidating_deletes_the_session_and_expires_the_cookie()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var id = browser.Cookies[CookieName];

        var response = await browser.PostAsync(Cluster[1], "/c/invalidate");

        Assert.Contains(response.SetCookies, c => c.StartsWith(CookieName + "=;", StringComparison.Ordinal));
        Assert.False(browser.Cookies.ContainsKey(CookieName));
        Assert.Null(await Store.Inner.LoadAsync(id));
    }

    [Fact]
    public async Task Concurrent_requests_writing_different_keys_through_several_instances_lose_nothing()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/seed/0");
        const int Requests = 60;

        var responses = await Task.WhenAll(Enumerable.Range(0, Requests).Select(i =>
            Task.Run(() => browser.PostAsync(Cluster[i % 3], $"/s/set-async/k{i}/{i}"))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        var keys = (await browser.GetAsync(Cluster[1], "/s/keys")).Body.Split(',');
        Assert.Equal(Requests + 1, keys.Length);
    }

    [Fact]
    public async Task Concurrent_atomic_increments_through_several_instances_lose_nothing()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/seed/0");
        const int Requests = 60;

        var responses = await Task.WhenAll(Enumerable.Range(0, Requests).Select(i =>
            Task.Run(() => browser.PostAsync(Cluster[i % 3], "/c/incr/counter"))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.Equal(Enumerable.Range(1, Requests), responses.Select(r => int.Parse(r.Body, System.Globalization.CultureInfo.InvariantCulture)).Order());
        Assert.Equal((Requests + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), (await browser.PostAsync(Cluster[2], "/c/incr/counter")).Body);
    }

    [Fact]
    public async Task Atomic_increment_on_a_new_session_creates_it()
    {
        var browser = new Browser();
        var response = await browser.PostAsync(Cluster[0], "/c/incr/n");

        Assert.Equal("1", response.Body);
        Assert.NotNull(response.SetCookie(CookieName));
        Assert.Equal("2", (await browser.PostAsync(Cluster[1], "/c/incr/n")).Body);
    }

    [Fact]
    public async Task Unknown_well_formed_id_is_a_miss_that_stores_nothing_for_a_read()
    {
        var browser = new Browser();
        browser.Cookies[CookieName] = SessionId.Create();

        var read = await browser.GetAsync(Cluster[0], "/s/get/a");

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("(none)", read.Body);
        Assert.Equal(0, Store.Writes);

        var write = await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Assert.NotNull(write.SetCookie(CookieName));
        Assert.Equal("1", (await browser.GetAsync(Cluster[1], "/s/get/a")).Body);
    }

    [Fact]
    public async Task Write_to_a_session_deleted_meanwhile_is_409_and_brings_nothing_back()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var id = browser.Cookies[CookieName];
        var gate = (RequestGate)Cluster.Apps[1].Services.GetService(typeof(RequestGate))!;

        var pending = browser.PostAsync(Cluster[1], "/c/gated-set/b/2");
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await Store.Inner.DeleteAsync(id));
        gate.Release.SetResult();
        var response = await pending;

        Assert.Equal(HttpStatusCode.Conflict, response.Status);
        Assert.Null(await Store.Inner.LoadAsync(id));
        Assert.False(browser.Cookies.ContainsKey(CookieName));
    }

    [Fact]
    public async Task Authenticated_request_that_uses_the_session_loads_it_once_and_writes_nothing()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/login/alice");
        Store.ResetCounts();

        var response = await browser.GetAsync(Cluster[1], "/c/info");

        Assert.Equal("alice|stored", response.Body);
        Assert.Equal(1, Store.Calls("load"));
        Assert.Equal(0, Store.Writes);
        Assert.Empty(response.SetCookies);
    }

    [Fact]
    public async Task Binding_a_principal_by_hand_makes_the_session_listable_and_revocable()
    {
        var browser = new Browser { UserAgent = "Custom/2.0" };
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        await browser.PostAsync(Cluster[1], "/c/bind/carol");
        var manager = (ISessionManager)Cluster.Apps[2].Services.GetService(typeof(ISessionManager))!;

        var session = Assert.Single(await manager.ListAsync("carol"));

        Assert.Equal("Custom/2.0", session.UserAgent);
        Assert.False(session.IsCurrent);
        Assert.Equal(manager.GetHandle(browser.Cookies[CookieName]), session.Handle);
        Assert.True(await manager.RevokeAsync("carol", session.Handle));
        Assert.Equal("(none)", (await browser.GetAsync(Cluster[0], "/s/get/a")).Body);
        Assert.False(await manager.RevokeAsync("someone-else", session.Handle));
    }

    [Fact]
    public async Task Sign_in_of_a_stored_session_costs_one_load_one_move_and_one_save()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Store.ResetCounts();

        await browser.PostAsync(Cluster[1], "/login/alice");

        Assert.Equal(1, Store.Calls("load"));
        Assert.Equal(1, Store.Calls("change_id"));
        Assert.Equal(1, Store.Calls("save"));
        Assert.Equal(3, Store.TotalCalls);
    }

    [Fact]
    public async Task Write_only_request_to_a_stored_session_costs_one_store_call()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Store.ResetCounts();

        var viaISession = await browser.PostAsync(Cluster[1], "/s/set/b/2");
        var viaClusterSession = await browser.PostAsync(Cluster[2], "/c/blind-set/c/3");

        Assert.Equal(HttpStatusCode.OK, viaISession.Status);
        Assert.Equal(HttpStatusCode.OK, viaClusterSession.Status);
        Assert.Equal(2, Store.Calls("save"));
        Assert.Equal(2, Store.TotalCalls);
        Assert.Empty(viaISession.SetCookies);
        Assert.Empty(viaClusterSession.SetCookies);
        Assert.Equal("a,b,c", (await browser.GetAsync(Cluster[0], "/s/keys")).Body);
    }

    [Fact]
    public async Task Blind_write_with_an_unknown_id_starts_a_new_session_and_never_recreates_that_id()
    {
        var forged = SessionId.Create();
        var browser = new Browser();
        browser.Cookies[CookieName] = forged;

        var response = await browser.PostAsync(Cluster[0], "/s/set/a/1");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.NotNull(response.SetCookie(CookieName));
        Assert.NotEqual(forged, browser.Cookies[CookieName]);
        Assert.Null(await Store.Inner.LoadAsync(forged));
        Assert.Equal("1", (await browser.GetAsync(Cluster[1], "/s/get/a")).Body);
    }

    [Fact]
    public async Task Blind_write_after_the_session_was_deleted_starts_a_new_session_with_only_these_writes()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var old = browser.Cookies[CookieName];
        await Store.Inner.DeleteAsync(old);

        var response = await browser.PostAsync(Cluster[1], "/c/blind-set/b/2");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.NotEqual(old, browser.Cookies[CookieName]);
        Assert.Null(await Store.Inner.LoadAsync(old));
        Assert.Equal("b", (await browser.GetAsync(Cluster[2], "/s/keys")).Body);
    }

    [Fact]
    public async Task Reads_after_blind_writes_load_once_and_see_the_writes_overlaid()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        await browser.PostAsync(Cluster[0], "/s/set/b/2");
        Store.ResetCounts();

        var response = await browser.PostAsync(Cluster[1], "/s/blind-mix");

        Assert.Equal("a,c|9|(none)", response.Body);
        Assert.Equal(1, Store.Calls("load"));
        Assert.Equal(1, Store.Calls("save"));
        Assert.Equal(2, Store.TotalCalls);
        Assert.Equal("a,c", (await browser.GetAsync(Cluster[2], "/s/keys")).Body);
        Assert.Equal("9", (await browser.GetAsync(Cluster[2], "/s/get/a")).Body);
    }

    [Theory]
    [InlineData("/s/set-write-body/b/2")]
    [InlineData("/s/set-write-stream/b/2")]
    public async Task Write_endpoint_that_writes_a_body_while_the_store_is_down_gets_a_clean_503_without_the_body(string path)
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Store.IsDown = true;

        var response = await browser.PostAsync(Cluster[1], path);

        Store.IsDown = false;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.Equal(string.Empty, response.Body);
        Assert.Empty(response.SetCookies);
        Assert.Equal("(none)", (await browser.GetAsync(Cluster[0], "/s/get/b")).Body);
        Assert.Equal("app body", (await browser.PostAsync(Cluster[0], path)).Body);
    }
}
