using System.Net;
using System.Text.RegularExpressions;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Sign-in shared by two OS processes of one app (different HOME, different content root) through the store
/// alone: the sessions, the tickets and, since nothing else is shared, the Data Protection key ring.
/// </summary>
public abstract partial class SharedSignInTests(ISharedStoreHosts hosts)
{
    private AppHost A => hosts.A;

    private AppHost B => hosts.B;

    [Fact]
    public async Task Sign_in_on_one_host_is_authenticated_on_the_other()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(A, "/signin/alice")).Status);

        Assert.Equal((HttpStatusCode.OK, "alice"), await browser.GetAsync(B, "/me"));
        Assert.Equal((HttpStatusCode.OK, "alice"), await browser.GetAsync(A, "/me"));
        Assert.True(await hosts.KeyRingElementsAsync() >= 1, "The Data Protection key ring is not in the store.");
        Assert.Equal(HttpStatusCode.Unauthorized, (await new Browser().GetAsync(B, "/me")).Status);
    }

    [Fact]
    public async Task Sign_out_on_one_host_is_rejected_on_the_other_even_with_the_old_cookies()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(A, "/signin/bob")).Status);
        Assert.Equal((HttpStatusCode.OK, "bob"), await browser.GetAsync(B, "/me"));
        var stolen = browser.Clone();

        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(B, "/signout")).Status);

        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(A, "/me")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stolen.GetAsync(A, "/me")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stolen.GetAsync(B, "/me")).Status);
    }

    [Fact]
    public async Task Revoking_a_users_sessions_on_one_host_signs_them_out_on_the_other()
    {
        var laptop = new Browser();
        var phone = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await laptop.PostAsync(A, "/signin/erin")).Status);
        Assert.Equal(HttpStatusCode.OK, (await phone.PostAsync(B, "/signin/erin")).Status);
        Assert.Equal((HttpStatusCode.OK, "erin"), await laptop.GetAsync(B, "/me"));

        Assert.Equal((HttpStatusCode.OK, "2"), await new Browser().PostAsync(B, "/revoke-all/erin"));

        Assert.Equal(HttpStatusCode.Unauthorized, (await laptop.GetAsync(A, "/me")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await phone.GetAsync(A, "/me")).Status);
    }

    [Fact]
    public async Task Antiforgery_form_rendered_by_one_host_is_accepted_by_the_other()
    {
        var browser = new Browser();
        var (status, html) = await browser.GetAsync(A, "/form");
        Assert.Equal(HttpStatusCode.OK, status);
        var field = HiddenField().Match(html);
        Assert.True(field.Success, html);
        KeyValuePair<string, string>[] form = [new(field.Groups["name"].Value, WebUtility.HtmlDecode(field.Groups["value"].Value))];

        Assert.Equal((HttpStatusCode.OK, "accepted"), await browser.PostAsync(B, "/form", form));
        Assert.Equal(HttpStatusCode.BadRequest, (await browser.PostAsync(B, "/form")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await new Browser().PostAsync(B, "/form", form)).Status);
    }

    [GeneratedRegex("name=\"(?<name>[^\"]+)\" value=\"(?<value>[^\"]+)\"")]
    private static partial Regex HiddenField();
}

/// <summary>Over Redis.</summary>
public sealed class RedisSharedSignInTests(RedisHostsFixture hosts) : SharedSignInTests(hosts), IClassFixture<RedisHostsFixture>;

/// <summary>Over PostgreSQL.</summary>
public sealed class PostgresSharedSignInTests(PostgresHostsFixture hosts) : SharedSignInTests(hosts), IClassFixture<PostgresHostsFixture>;
