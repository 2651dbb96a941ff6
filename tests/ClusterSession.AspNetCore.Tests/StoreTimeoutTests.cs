using System.Diagnostics;
using System.Net;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>StoreTimeout is one deadline, applied by cancelling the store call through its token.</summary>
public sealed class StoreTimeoutTests
{
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task A_hung_store_call_is_cancelled_at_the_store_timeout_and_the_request_is_503()
    {
        await using var cluster = await AppCluster.StartAsync(
            new ClusterSession.InMemory.InMemorySessionStore(), instances: 1, options => options.StoreTimeout = StoreTimeout);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/s/set/a/1");
        cluster.Store.HangLoads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var watch = Stopwatch.StartNew();
        var response = await browser.GetAsync(cluster[0], "/s/get/a");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.InRange(watch.Elapsed, StoreTimeout - TimeSpan.FromMilliseconds(50), StoreTimeout + Slack);

        // Cancelled, not abandoned: the store's call saw its token fire and ended.
        Assert.Equal(1, cluster.Store.CancelledHangs);
        cluster.Store.HangLoads = null;
        Assert.Equal("1", (await browser.GetAsync(cluster[0], "/s/get/a")).Body);
    }

    [Fact]
    public async Task A_store_with_a_longer_deadline_of_its_own_still_answers_within_the_store_timeout()
    {
        await using var hung = new HungServer();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{hung.Port}", OperationTimeout = TimeSpan.FromSeconds(30) });
        await using var cluster = await AppCluster.StartAsync(store, instances: 1, options => options.StoreTimeout = StoreTimeout);
        var browser = new Browser();

        var watch = Stopwatch.StartNew();
        var response = await browser.PostAsync(cluster[0], "/s/set/a/1");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.InRange(watch.Elapsed, StoreTimeout - TimeSpan.FromMilliseconds(50), StoreTimeout + Slack);
        Assert.Empty(response.SetCookies);
    }
}
