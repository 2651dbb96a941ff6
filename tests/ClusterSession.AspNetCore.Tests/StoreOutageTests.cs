using System.Net;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>A store that fails makes the request fail (503), never an empty session or a false success.</summary>
public sealed class StoreOutageTests : IAsyncLifetime
{
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    public async Task InitializeAsync() => _cluster = await AppCluster.StartAsync(new ClusterSession.InMemory.InMemorySessionStore(), instances: 2);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Read_while_the_store_is_down_is_503_not_an_empty_session()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        Cluster.Store.IsDown = true;

        var response = await browser.GetAsync(Cluster[1], "/s/get/a");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.DoesNotContain("(none)", response.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.GetAsync(Cluster[1], "/s/load")).Status);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(Cluster[1], "/noop")).Status);

        Cluster.Store.IsDown = false;
        Assert.Equal("1", (await browser.GetAsync(Cluster[1], "/s/get/a")).Body);
    }

    [Fact]
    public async Task Store_failing_between_load_and_save_gives_503_and_loses_nothing_once_back()
    {
        var browser = new Browser();
        await browser.PostAsync(Cluster[0], "/s/set/a/1");
        var gate = Cluster.Apps[1].Services.GetService(typeof(RequestGate)) as RequestGate;

        var pending = browser.PostAsync(Cluster[1], "/c/gated-set/b/2");
        await gate!.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Cluster.Store.IsDown = true;
        gate.Release.SetResult();
        var response = await pending;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.Empty(response.SetCookies);
        Cluster.Store.IsDown = false;
        Assert.Equal("1", (await browser.GetAsync(Cluster[0], "/s/get/a")).Body);
        Assert.Equal("(none)", (await browser.GetAsync(Cluster[0], "/c/get/b")).Body);
    }

    [Fact]
    public async Task New_session_that_cannot_be_created_is_503_without_a_cookie()
    {
        var browser = new Browser();
        Cluster.Store.IsDown = true;

        var response = await browser.PostAsync(Cluster[0], "/s/set/a/1");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.Empty(response.SetCookies);
    }

    [Fact]
    public async Task Sign_in_while_the_store_is_down_is_503_and_sets_no_cookie()
    {
        var browser = new Browser();
        Cluster.Store.IsDown = true;

        var response = await browser.PostAsync(Cluster[0], "/login/alice");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.Empty(response.SetCookies);
    }
}
