using System.Net;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.InMemory;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClusterSession.AspNetCore.Tests;

/// <summary><c>AddHealthChecks().AddClusterSession()</c> over a real redis-server that is killed and started again.</summary>
public sealed class RedisHealthCheckTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(1);

    private DirectoryInfo? _keys;
    private TestApp? _app;
    private RedisSessionStore? _store;

    public async Task InitializeAsync()
    {
        Assert.True(redis.OwnsProcess, "This test kills its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        _store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = redis.Configuration + ",abortConnect=false", OperationTimeout = StoreTimeout });
        await RedisFailFastTests.UntilAnswersAsync(_store);
        _keys = Directory.CreateTempSubdirectory("cs-keys-");
        _app = await TestApp.StartCoreAsync(
            _keys,
            services =>
            {
                services.AddClusterSession(options =>
                {
                    options.UseStore(_ => _store);
                    options.StoreTimeout = StoreTimeout;
                    options.CircuitBreaker.FailureThreshold = 3;
                    options.CircuitBreaker.BreakDuration = TimeSpan.FromSeconds(1);
                });
                services.AddHealthChecks().AddClusterSession();
            },
            app =>
            {
                app.UseClusterSession();
                app.MapHealthChecks("/healthz");
            });
    }

    public async Task DisposeAsync()
    {
        await _app!.DisposeAsync();
        _keys!.Delete(recursive: true);
    }

    [Fact]
    public async Task Health_is_healthy_while_redis_answers_unhealthy_while_it_is_down_and_healthy_again_without_a_restart()
    {
        var browser = new Browser();
        var address = _app!.Address;
        for (var i = 0; i < 5; i++)
        {
            var healthy = await browser.GetAsync(address, "/healthz");
            Assert.Equal(HttpStatusCode.OK, healthy.Status);
            Assert.Equal("Healthy", healthy.Body);
        }

        // Health checks create no session (the store's layout marker and node registry are its only keys).
        Assert.Equal("*0", (await ServerProcess.TryCommandAsync(redis.Port, "KEYS *s3:*"))?.Trim());

        redis.Kill();
        var down = await browser.GetAsync(address, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.Status);
        Assert.Equal("Unhealthy", down.Body);

        // Health checks are store calls like any other: enough failures open the circuit, and then they fail at once.
        var health = _app.Services.GetRequiredService<HealthCheckService>();
        await ServerProcess.UntilAsync(
            async () => (await health.CheckHealthAsync()).Entries["cluster_session"].Data["circuit"] is "open",
            TimeSpan.FromSeconds(20),
            "the circuit opens");
        var report = (await health.CheckHealthAsync()).Entries["cluster_session"];
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        Assert.Contains("circuit open", report.Description, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(address, "/noop")).Status);
        var refused = await browser.PostAsync(address, "/c/set/a/1");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.NotNull(refused.Headers.RetryAfter);

        await redis.StartAsync();
        await ServerProcess.UntilAsync(
            async () => (await browser.GetAsync(address, "/healthz")).Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(30),
            "/healthz is 200 again");

        // The health check's own successful try closed the circuit for the requests too.
        Assert.Equal(CircuitState.Closed, _app.Services.GetRequiredService<SessionRuntime>().Circuit.State);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(address, "/c/set/a/1")).Status);
        Assert.Equal("1", (await browser.GetAsync(address, "/c/get/a")).Body);
    }
}

/// <summary>The health check over stores that report their own health, and its options.</summary>
public sealed class HealthCheckTests
{
    [Fact]
    public async Task A_store_that_reports_degraded_or_unhealthy_is_reported_so_with_its_description()
    {
        var store = new SelfReportingStore(new InMemorySessionStore());
        await using var services = Build(store);
        var health = services.GetRequiredService<HealthCheckService>();

        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);

        store.Health = SessionStoreHealth.Degraded("1 of 2 replicas connected; saves wait for 2.");
        var degraded = (await health.CheckHealthAsync()).Entries[ClusterSessionHealthChecksBuilderExtensions.DefaultName];
        Assert.Equal(HealthStatus.Degraded, degraded.Status);
        Assert.Equal("1 of 2 replicas connected; saves wait for 2.", degraded.Description);

        store.Health = SessionStoreHealth.Unhealthy("Connected to a replica only; writes are refused.");
        var unhealthy = (await health.CheckHealthAsync()).Entries[ClusterSessionHealthChecksBuilderExtensions.DefaultName];
        Assert.Equal(HealthStatus.Unhealthy, unhealthy.Status);
        Assert.Equal("Connected to a replica only; writes are refused.", unhealthy.Description);
        Assert.Equal(0, await store.CountAsync());
    }

    [Fact]
    public async Task The_health_check_creates_and_writes_no_session()
    {
        var store = new ObservedStore(new InMemorySessionStore());
        await using var services = Build(store);
        var health = services.GetRequiredService<HealthCheckService>();

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);
        }

        Assert.Equal(10, store.Calls("load"));
        Assert.Equal(0, store.Writes);
        Assert.Equal(0, await store.CountAsync());
    }

    [Fact]
    public async Task A_store_that_is_down_reports_the_configured_failure_status()
    {
        var store = new ObservedStore(new InMemorySessionStore()) { IsDown = true };
        await using var services = Build(store, failureStatus: HealthStatus.Degraded);

        var entry = (await services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries[ClusterSessionHealthChecksBuilderExtensions.DefaultName];

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.StartsWith("The session store is unavailable", entry.Description, StringComparison.Ordinal);
    }

    private static ServiceProvider Build(ISessionStore store, HealthStatus? failureStatus = null)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddClusterSession(options => options.UseStore(_ => store));
        services.AddHealthChecks().AddClusterSession(failureStatus: failureStatus);
        return services.BuildServiceProvider(validateScopes: true);
    }

    /// <summary>A real in-memory store that also reports a health set by the test, as a replicated store would.</summary>
    private sealed class SelfReportingStore(ISessionStore inner) : ISessionStore, ISessionStoreHealthReporter
    {
        public SessionStoreHealth Health { get; set; } = SessionStoreHealth.Healthy();

        public ValueTask<SessionStoreHealth> GetHealthAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Health);

        public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => inner.CreateAsync(session, cancellationToken);

        public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default) => inner.LoadAsync(id, cancellationToken);

        public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default) => inner.SaveAsync(changes, cancellationToken);

        public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(id, cancellationToken);
        public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default) => inner.DeleteByHandleAsync(principal, handle, cancellationToken);


        public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => inner.ChangeIdAsync(oldId, newId, cancellationToken);

        public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
            => inner.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken);

        public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => inner.FindByPrincipalAsync(principal, cancellationToken);

        public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
    }
}
