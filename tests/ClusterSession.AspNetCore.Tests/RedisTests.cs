using System.Net;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;

namespace ClusterSession.AspNetCore.Tests;

[CollectionDefinition(Name)]
public sealed class AspNetCoreRedis : ICollectionFixture<RedisServerFixture>
{
    public const string Name = "aspnetcore redis";
}

/// <summary>The functional behaviour over Redis shared by the app instances.</summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class RedisClusterSessionTests(RedisServerFixture redis) : ClusterSessionFunctionalTests
{
    protected override Task<ISessionStore> CreateStoreAsync()
        => Task.FromResult<ISessionStore>(new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = redis.Configuration,
            KeyPrefix = "asp" + Guid.NewGuid().ToString("N")[..12] + ":",
        }));
}

/// <summary>A Redis server of its own, killed in the middle of a request and started again.</summary>
public sealed class RedisOutageTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    public async Task InitializeAsync()
    {
        Assert.True(redis.OwnsProcess, "This test kills its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = redis.Configuration + ",abortConnect=false",
            OperationTimeout = TimeSpan.FromSeconds(2),
        });
        await WaitUntilAsync(async () =>
        {
            try
            {
                await store.CountAsync();
                return true;
            }
            catch (SessionStoreUnavailableException)
            {
                return false;
            }
        });
        _cluster = await AppCluster.StartAsync(store, instances: 2);
    }

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Store_killed_mid_request_gives_503_and_nothing_is_lost_once_it_is_back()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[0], "/s/set/a/1")).Status);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[1], "/login/alice")).Status);
        Assert.Equal("1", (await browser.PostAsync(Cluster[0], "/c/incr/n")).Body);

        // A persistent Redis would have this on disk; the fixture's server has persistence off, so snapshot by hand.
        Assert.StartsWith("+OK", await ServerProcess.TryCommandAsync(redis.Port, "SAVE"), StringComparison.Ordinal);

        var gate = (RequestGate)Cluster.Apps[1].Services.GetService(typeof(RequestGate))!;
        var pending = browser.PostAsync(Cluster[1], "/c/gated-set/b/2");
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        redis.Kill();
        gate.Release.SetResult();
        var write = await pending;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, write.Status);
        Assert.Empty(write.SetCookies);
        var read = await browser.GetAsync(Cluster[0], "/s/get/a");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, read.Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.GetAsync(Cluster[0], "/me")).Status);

        await redis.StartAsync();
        Response? back = null;
        await WaitUntilAsync(async () => (back = await browser.GetAsync(Cluster[0], "/s/get/a")).Status == HttpStatusCode.OK);
        Assert.Equal("1", back!.Body);
        Assert.Equal("(none)", (await browser.GetAsync(Cluster[1], "/c/get/b")).Body);
        Assert.Equal("alice", (await browser.GetAsync(Cluster[1], "/me")).Body);
        Assert.Equal("2", (await browser.PostAsync(Cluster[1], "/c/incr/n")).Body);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Redis did not answer within 60 s.");
            await Task.Delay(100);
        }
    }
}
