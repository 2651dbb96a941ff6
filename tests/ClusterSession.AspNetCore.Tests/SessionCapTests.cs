using System.Net;
using ClusterSession.AspNetCore;
using ClusterSession.InMemory;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// The per-user session cap through real Kestrel instances sharing one store: simultaneous sign-ins of one user
/// spread over three instances never leave more than the cap alive. Inherited once per store.
/// </summary>
public abstract class SessionCapTests
{
    private const int Cap = 3;
    private const int SignIns = 20;

    /// <summary>Creates an empty store that no other test sees.</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync();

    [Fact]
    public async Task Simultaneous_sign_ins_through_three_instances_leave_only_the_cap_signed_in()
    {
        await using var cluster = await StartAsync(SessionCapPolicy.EndOldestSession);
        var browsers = Enumerable.Range(0, SignIns).Select(_ => new Browser()).ToList();

        var signIns = await Task.WhenAll(browsers.Select((b, i) => b.PostAsync(cluster[i % 3], "/login/alice")));

        // A sign-in whose new session a later sign-in ended before its own response was sent gets the conflict status.
        Assert.All(signIns, r => Assert.Contains(r.Status, new[] { HttpStatusCode.OK, HttpStatusCode.Conflict }));
        Assert.True(signIns.Count(r => r.Status == HttpStatusCode.OK) >= Cap);
        var me = await Task.WhenAll(browsers.Select((b, i) => b.GetAsync(cluster[(i + 1) % 3], "/me")));
        Assert.Equal(Cap, me.Count(r => r.Status == HttpStatusCode.OK));
        Assert.Equal(SignIns - Cap, me.Count(r => r.Status == HttpStatusCode.Unauthorized));
        Assert.Equal(Cap, (await cluster.Store.Inner.FindByPrincipalAsync("alice")).Count);
    }

    [Fact]
    public async Task Sign_in_beyond_the_cap_ends_the_oldest_session_on_every_instance()
    {
        await using var cluster = await StartAsync(SessionCapPolicy.EndOldestSession);
        var browsers = Enumerable.Range(0, Cap + 1).Select(_ => new Browser()).ToList();
        for (var i = 0; i < browsers.Count; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await browsers[i].PostAsync(cluster[i % 3], "/login/alice")).Status);
        }

        for (var instance = 0; instance < 3; instance++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await browsers[0].GetAsync(cluster[instance], "/me")).Status);
            foreach (var browser in browsers.Skip(1))
            {
                Assert.Equal("alice", (await browser.GetAsync(cluster[instance], "/me")).Body);
            }
        }
    }

    [Fact]
    public async Task Simultaneous_sign_ins_under_the_refuse_policy_admit_the_cap_and_refuse_the_rest_with_409()
    {
        await using var cluster = await StartAsync(SessionCapPolicy.RefuseNewSession);
        var browsers = Enumerable.Range(0, SignIns).Select(_ => new Browser()).ToList();

        var signIns = await Task.WhenAll(browsers.Select((b, i) => b.PostAsync(cluster[i % 3], "/login/alice")));

        Assert.Equal(Cap, signIns.Count(r => r.Status == HttpStatusCode.OK));
        var refused = signIns.Where(r => r.Status == HttpStatusCode.Conflict).ToList();
        Assert.Equal(SignIns - Cap, refused.Count);
        Assert.All(refused, r => Assert.Empty(r.SetCookies));
        var me = await Task.WhenAll(browsers.Select((b, i) => b.GetAsync(cluster[(i + 2) % 3], "/me")));
        Assert.Equal(Cap, me.Count(r => r.Status == HttpStatusCode.OK));
        Assert.Equal(Cap, (await cluster.Store.Inner.FindByPrincipalAsync("alice")).Count);

        // A refused user signs out elsewhere, and then gets in.
        var admitted = browsers.Where((_, i) => signIns[i].Status == HttpStatusCode.OK).ToList();
        Assert.Equal(HttpStatusCode.OK, (await admitted[0].PostAsync(cluster[0], "/logout")).Status);
        var late = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await late.PostAsync(cluster[1], "/login/alice")).Status);
        Assert.Equal("alice", (await late.GetAsync(cluster[2], "/me")).Body);
    }

    private async Task<AppCluster> StartAsync(SessionCapPolicy policy)
        => await AppCluster.StartAsync(await CreateStoreAsync(), instances: 3, configure: options =>
        {
            options.MaxSessionsPerPrincipal = Cap;
            options.SessionCapPolicy = policy;
        });
}

/// <summary>The cap over the in-memory store shared by the instances.</summary>
public sealed class InMemorySessionCapTests : SessionCapTests
{
    protected override Task<ISessionStore> CreateStoreAsync() => Task.FromResult<ISessionStore>(new InMemorySessionStore());
}

/// <summary>The cap over Redis.</summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class RedisSessionCapTests(RedisServerFixture redis) : SessionCapTests
{
    protected override Task<ISessionStore> CreateStoreAsync()
        => Task.FromResult<ISessionStore>(new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = redis.Configuration,
            KeyPrefix = "cap" + Guid.NewGuid().ToString("N")[..12] + ":",
        }));
}

/// <summary>The cap over PostgreSQL (tables of its own per test).</summary>
[Collection(AspNetCorePostgres.Name)]
public sealed class PostgresSessionCapTests(PostgresServerFixture postgres) : SessionCapTests
{
    protected override async Task<ISessionStore> CreateStoreAsync()
    {
        var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = postgres.ConnectionString,
            Schema = "cs_aspnetcore_tests",
            TablePrefix = "t" + Guid.NewGuid().ToString("N")[..12] + "_",
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });
        await store.CreateSchemaAsync();
        return store;
    }
}
