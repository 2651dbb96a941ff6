using System.Net;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// <c>/healthz/live</c> and <c>/healthz/ready</c> over a real redis-server primary and a real replica, with saves that
/// wait for one replica (<c>WaitForReplicas = 1</c>): ready only while a write gets its acknowledgement.
/// </summary>
public sealed class ReadinessTests(RedisServerFixture primary) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(3);

    private readonly RedisServerFixture _replica = new();
    private DirectoryInfo? _keys;
    private TestApp? _app;

    public async Task InitializeAsync()
    {
        Assert.True(primary.OwnsProcess, "This test makes a replica of its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        await _replica.InitializeAsync();
        Assert.True(_replica.OwnsProcess, "This test pauses its replica; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = primary.Configuration,
            KeyPrefix = "ready" + Guid.NewGuid().ToString("N")[..8] + ":",
            OperationTimeout = TimeSpan.FromSeconds(2),
            WaitForReplicas = 1,
            ReplicaWaitTimeout = TimeSpan.FromMilliseconds(300),
        });
        await RedisFailFastTests.UntilAnswersAsync(store);
        _keys = Directory.CreateTempSubdirectory("cs-keys-");
        _app = await TestApp.StartCoreAsync(
            _keys,
            services =>
            {
                services.AddClusterSession(options =>
                {
                    options.UseStore(_ => store);
                    options.StoreTimeout = StoreTimeout;
                    options.CircuitBreaker.FailureThreshold = 50;
                });
                services.AddHealthChecks().AddClusterSessionLiveness().AddClusterSessionReadiness();
            },
            app =>
            {
                app.UseClusterSession();
                app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.LiveTag) });
                app.MapHealthChecks("/healthz/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.ReadyTag) });
            });
    }

    public async Task DisposeAsync()
    {
        await _app!.DisposeAsync();
        await _replica.DisposeAsync();
        _keys!.Delete(recursive: true);
    }

    [Fact]
    public async Task Ready_only_while_a_write_gets_its_replica_acknowledgement_and_live_throughout()
    {
        var browser = new Browser();
        var address = _app!.Address;
        var health = _app.Services.GetRequiredService<HealthCheckService>();

        // No replica yet: saves fail, so the node is not ready; it is live.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.GetAsync(address, "/healthz/ready")).Status);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(address, "/healthz/live")).Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.PostAsync(address, "/c/set/a/1")).Status);

        // A replica in sync: ready, and a write succeeds.
        Assert.StartsWith("+OK", await ServerProcess.TryCommandAsync(_replica.Port, $"REPLICAOF 127.0.0.1 {primary.Port}"), StringComparison.Ordinal);
        await ServerProcess.UntilAsync(
            async () => (await browser.GetAsync(address, "/healthz/ready")).Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(30),
            "/healthz/ready is 200 once the replica is in sync");
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(address, "/c/set/a/1")).Status);

        // The replica stops acknowledging but stays connected (what a replica still in its first sync looks like to
        // INFO): not ready, with a description that says why; still live.
        await _replica.PauseAsync();
        try
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.GetAsync(address, "/healthz/ready")).Status);
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(address, "/healthz/live")).Status);
            var entry = (await health.CheckHealthAsync(c => c.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.ReadyTag)))
                .Entries[ClusterSessionHealthChecksBuilderExtensions.DefaultReadinessName];
            Assert.Equal(HealthStatus.Unhealthy, entry.Status);
            Assert.Contains("acknowledgement", entry.Description, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.PostAsync(address, "/c/set/a/2")).Status);
        }
        finally
        {
            await _replica.ResumeAsync();
        }

        await ServerProcess.UntilAsync(
            async () => (await browser.GetAsync(address, "/healthz/ready")).Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(30),
            "/healthz/ready is 200 again once the replica acknowledges");
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(address, "/c/set/a/3")).Status);
    }
}

/// <summary>The liveness check makes no store call: a store that is down does not make a node unlive.</summary>
public sealed class LivenessTests
{
    [Fact]
    public async Task Liveness_is_healthy_and_calls_no_store_while_readiness_reports_the_store_down()
    {
        var store = new ObservedStore(new InMemory.InMemorySessionStore()) { IsDown = true };
        var services = new ServiceCollection().AddLogging();
        services.AddClusterSession(options => options.UseStore(_ => store));
        services.AddHealthChecks().AddClusterSessionLiveness().AddClusterSessionReadiness();
        await using var provider = services.BuildServiceProvider(validateScopes: true);
        var health = provider.GetRequiredService<HealthCheckService>();

        var live = await health.CheckHealthAsync(c => c.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.LiveTag));
        Assert.Equal(HealthStatus.Healthy, live.Status);
        Assert.Equal([ClusterSessionHealthChecksBuilderExtensions.DefaultLivenessName], live.Entries.Keys);
        Assert.Equal(0, store.Calls("load"));

        var ready = await health.CheckHealthAsync(c => c.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.ReadyTag));
        Assert.Equal(HealthStatus.Unhealthy, ready.Status);
        Assert.Equal([ClusterSessionHealthChecksBuilderExtensions.DefaultReadinessName], ready.Entries.Keys);
    }
}
