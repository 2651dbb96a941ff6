using System.Net;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>Malformed, oversized, forged and unknown ids: a miss, never a 5xx and never a store write on a read.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    public async Task InitializeAsync()
        => _cluster = await AppCluster.StartAsync(new ClusterSession.InMemory.InMemorySessionStore(), instances: 1, options => options.Transports = SessionIdTransports.Cookie | SessionIdTransports.Header);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    public static TheoryData<string, string> BadIds()
    {
        var valid = SessionId.Create();
        return new()
        {
            { "empty", string.Empty },
            { "short", "abc" },
            { "one character too short", valid[..^1] },
            { "one character too long", valid + "A" },
            { "oversized", new string('A', 8000) },
            { "base64 padding", valid[..^1] + "=" },
            { "standard base64 characters", valid[..^2] + "+/" },
            { "percent-encoded", Uri.EscapeDataString(valid[..^1] + "/") },
            { "spaces", new string(' ', 32) },
            { "unicode", new string('é', 32) },
            { "sql", "' OR 1=1 --" + new string('x', 21) },
            { "path traversal", "../../../../etc/passwd" },
            { "control characters", "\u0001\u0002" + valid[2..] },
            { "unknown but well formed", SessionId.Create() },
            { "reserved prefix", "__cs." + valid[5..] },
        };
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Bad_cookie_is_a_miss_without_5xx_or_store_write(string label, string value)
    {
        _ = label;
        var browser = new Browser();
        var response = await browser.SendAsync(HttpMethod.Get, Cluster[0], "/s/get/a", request =>
            request.Headers.TryAddWithoutValidation("Cookie", ".ClusterSession=" + value));

        // Kestrel itself may refuse bytes that are not valid in a header (400); the session never sees those.
        Assert.True(response.Status is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"{label}: {response.Status}");
        if (response.Status == HttpStatusCode.OK)
        {
            Assert.Equal("(none)", response.Body);
        }

        Assert.Equal(0, Cluster.Store.Writes);
        Assert.True(Cluster.Store.Calls("load") <= 1);
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Bad_header_is_a_miss_without_5xx_or_store_write(string label, string value)
    {
        _ = label;
        var browser = new Browser();
        var response = await browser.SendAsync(HttpMethod.Get, Cluster[0], "/s/get/a", request =>
            request.Headers.TryAddWithoutValidation("X-Session-Id", value));

        Assert.True((int)response.Status < 500, $"{label}: {response.Status}");
        Assert.Equal(0, Cluster.Store.Writes);
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Bad_cookie_on_a_write_starts_a_new_session(string label, string value)
    {
        _ = label;
        var browser = new Browser();
        browser.Cookies[".ClusterSession"] = Uri.EscapeDataString(value);

        var response = await browser.PostAsync(Cluster[0], "/s/set/a/1");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.True(SessionId.IsWellFormed(browser.Cookies[".ClusterSession"]));
        Assert.Equal(1, Cluster.Store.Calls("create"));
        Assert.Equal("1", (await browser.GetAsync(Cluster[0], "/s/get/a")).Body);
    }

    [Fact]
    public async Task Several_session_headers_are_a_miss()
    {
        var browser = new Browser();
        var response = await browser.SendAsync(HttpMethod.Get, Cluster[0], "/s/get/a", request =>
            request.Headers.TryAddWithoutValidation("X-Session-Id", [SessionId.Create(), SessionId.Create()]));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(0, Cluster.Store.TotalCalls);
    }

    [Fact]
    public async Task Header_transport_carries_the_id_for_api_clients()
    {
        var client = new Browser();
        var created = await client.PostAsync(Cluster[0], "/s/set/a/1");
        var id = created.Headers.GetValues("X-Session-Id").Single();
        Assert.True(SessionId.IsWellFormed(id));

        var api = new Browser();
        var read = await api.SendAsync(HttpMethod.Get, Cluster[0], "/s/get/a", request => request.Headers.Add("X-Session-Id", id));

        Assert.Equal("1", read.Body);
        Assert.False(read.Headers.Contains("X-Session-Id"));
    }
}
