using System.Net;
using ClusterSession.InMemory;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>A change the store refuses for its limits is a clear 4xx, never a 500, and saves nothing.</summary>
public sealed class LimitTests : IAsyncLifetime
{
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    public async Task InitializeAsync()
        => _cluster = await AppCluster.StartAsync(
            new InMemorySessionStore(new InMemorySessionStoreOptions { Limits = new SessionLimits { MaxAttributes = 2 } }),
            instances: 2);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Write_only_request_over_the_attribute_count_is_413_and_saves_nothing()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[0], "/s/set/a/1")).Status);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[1], "/s/set/b/2")).Status);

        // Neither request read the session, so only the store can count its attributes.
        var response = await browser.PostAsync(Cluster[0], "/s/set/c/3");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.Status);
        Assert.Empty(response.SetCookies);
        Assert.Equal("a,b", (await browser.GetAsync(Cluster[1], "/s/keys")).Body);
    }

    [Fact]
    public async Task Oversized_value_set_by_the_app_is_413_not_500()
    {
        var browser = new Browser();

        var response = await browser.PostAsync(Cluster[0], "/s/sized/big/" + (SessionLimits.Default.MaxValueBytes + 1));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.Status);
    }
}
