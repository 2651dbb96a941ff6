using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// A real store stopped under load: once the outage is detected, requests that need the session fail at once
/// with 503 and Retry-After; requests that do not touch the session keep working; the store comes back and the
/// app recovers by itself. Latencies are measured and written to the test output, asserted only loosely.
/// </summary>
public abstract class FailFastUnderLoadTests : IAsyncLifetime
{
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(1);
    private const int Clients = 8;
    private const int MaxRequestsPerClient = 4000;

    private readonly ITestOutputHelper _output;
    private AppCluster? _cluster;

    protected FailFastUnderLoadTests(ITestOutputHelper output) => _output = output;

    protected abstract string StoreName { get; }

    /// <summary>A store on a server of the test's own, ready to answer, with its own timeout at <paramref name="timeout"/>.</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync(TimeSpan timeout);

    protected abstract Task StopServerAsync();

    protected abstract Task StartServerAsync();

    public async Task InitializeAsync()
        => _cluster = await AppCluster.StartAsync(await CreateStoreAsync(StoreTimeout), instances: 1, options =>
        {
            options.StoreTimeout = StoreTimeout;
            options.CircuitBreaker.FailureThreshold = 3;
            options.CircuitBreaker.BreakDuration = BreakDuration;
        });

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Store_stopped_under_load_fails_requests_fast_with_retry_after_and_recovers_when_it_is_back()
    {
        var app = _cluster![0];
        long fastFailuresCounted = 0;
        using var meter = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == SessionDiagnostics.Name && instrument.Name == "cluster_session.store.fast_failures")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meter.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref fastFailuresCounted, value));
        meter.Start();

        var browsers = Enumerable.Range(0, Clients).Select(_ => new Browser()).ToList();
        foreach (var browser in browsers)
        {
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(app, "/c/set/a/1")).Status);
        }

        var clock = Stopwatch.StartNew();
        var results = new ConcurrentQueue<Sample>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        // The asynchronous session API: synchronous access (ISession.GetString) blocks a pool thread per request,
        // which on a 2-core machine starves the pool and turns into store timeouts of its own.
        var workers = browsers.Select(b => RunClientAsync(b, app, "/c/get/a", session: true, clock, results, stop.Token))
            .Append(RunClientAsync(new Browser(), app, "/noop", session: false, clock, results, stop.Token))
            .ToList();

        await ServerProcess.UntilAsync(() => Task.FromResult(results.Count(r => r.Session && r.Status == HttpStatusCode.OK) >= 40), TimeSpan.FromSeconds(20), "the clients are under way");
        var stoppedAt = clock.Elapsed;
        await StopServerAsync();
        await ServerProcess.UntilAsync(() => Task.FromResult(results.Any(r => r.RetryAfter is not null)), TimeSpan.FromSeconds(20), "a request fails fast");
        var detectedAt = results.Where(r => r.RetryAfter is not null).Min(r => r.Start);

        // Keep the outage going under load for a while, so the fast failures are measured over many requests.
        await ServerProcess.UntilAsync(() => Task.FromResult(clock.Elapsed > detectedAt + TimeSpan.FromSeconds(3)), TimeSpan.FromSeconds(10), "3 s of outage after detection");
        await StartServerAsync();
        var restartedAt = clock.Elapsed;
        await ServerProcess.UntilAsync(
            () => Task.FromResult(browsers.All(b => results.Any(r => r.Client == b && r.Start > restartedAt && r.Status == HttpStatusCode.OK))),
            TimeSpan.FromSeconds(30),
            "every client's session requests succeed again");
        var recoveredAt = clock.Elapsed;
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        var all = results.ToList();
        var sessionRequests = all.Where(r => r.Session).ToList();
        var failed = sessionRequests.Where(r => r.Status != HttpStatusCode.OK).ToList();
        var fast = failed.Where(r => r.RetryAfter is not null).ToList();
        var slow = failed.Where(r => r.RetryAfter is null).ToList();
        var duringOutage = failed.Where(r => r.Start >= detectedAt && r.Start < restartedAt).ToList();
        _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[{StoreName}] {all.Count} requests ({sessionRequests.Count} session, {all.Count - sessionRequests.Count} no-session); store stopped at {stoppedAt.TotalSeconds:0.00} s, "
            + $"first fast failure {(detectedAt - stoppedAt).TotalMilliseconds:0} ms later; failed session requests: {failed.Count} "
            + $"({slow.Count} before detection or as probes: p50 {Percentile(slow, 0.5):0.0} ms, max {Percentile(slow, 1):0.0} ms; "
            + $"{fast.Count} fast with Retry-After: p50 {Percentile(fast, 0.5):0.0} ms, p99 {Percentile(fast, 0.99):0.0} ms, max {Percentile(fast, 1):0.0} ms); "
            + $"all failures after detection p99 {Percentile(duringOutage, 0.99):0.0} ms; "
            + $"recovered {(recoveredAt - restartedAt).TotalMilliseconds:0} ms after the store was back"));

        Assert.All(all.Where(r => !r.Session), r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.DoesNotContain(failed, r => r.Start + r.Latency < stoppedAt);
        Assert.All(failed, r => Assert.Equal(HttpStatusCode.ServiceUnavailable, r.Status));
        Assert.NotEmpty(fast);
        Assert.All(fast, r => Assert.InRange(r.RetryAfter!.Value, 1, (int)Math.Ceiling(BreakDuration.TotalSeconds)));
        Assert.True(Interlocked.Read(ref fastFailuresCounted) >= fast.Count, "every fast failure is counted in cluster_session.store.fast_failures");

        // Most failures after detection are fast; only the one probe per break may wait for the store. Counted from when
        // the first fast failure was answered (the circuit was open by then): requests sent a moment after the first fast
        // one may have reached the store before it opened (a busy server does not take requests in the order they left).
        var openAt = fast.Min(r => r.Start + r.Latency);
        var slowAfterOpen = duringOutage.Count(r => r.RetryAfter is null && r.Start >= openAt);
        Assert.True(slowAfterOpen <= (int)((restartedAt - openAt) / BreakDuration) + 2,
            $"{slowAfterOpen} slow failures after the circuit opened: more than one probe per break");

        // No request waits for more than one store timeout (plus the HTTP round trip on a busy 2-core machine).
        Assert.All(sessionRequests, r => Assert.True(r.Latency < StoreTimeout + TimeSpan.FromSeconds(1), $"a request took {r.Latency.TotalMilliseconds:0} ms"));
        Assert.Equal(CircuitState.Closed, _cluster.Apps[0].Services.GetRequiredService<SessionRuntime>().Circuit.State);
    }

    private static double Percentile(List<Sample> samples, double p)
    {
        if (samples.Count == 0)
        {
            return 0;
        }

        var sorted = samples.Select(s => s.Latency.TotalMilliseconds).Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static async Task RunClientAsync(Browser browser, Uri app, string path, bool session, Stopwatch clock, ConcurrentQueue<Sample> results, CancellationToken stop)
    {
        for (var i = 0; i < MaxRequestsPerClient && !stop.IsCancellationRequested; i++)
        {
            var start = clock.Elapsed;
            var response = await browser.GetAsync(app, path);
            var retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? (int)delta.TotalSeconds : (int?)null;
            results.Enqueue(new Sample(browser, session, start, clock.Elapsed - start, response.Status, retryAfter));
            try
            {
                await Task.Delay(5, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private sealed record Sample(Browser Client, bool Session, TimeSpan Start, TimeSpan Latency, HttpStatusCode Status, int? RetryAfter);
}

/// <summary>redis-server killed under load and started again.</summary>
public sealed class RedisFailFastTests(RedisServerFixture redis, ITestOutputHelper output)
    : FailFastUnderLoadTests(output), IClassFixture<RedisServerFixture>
{
    protected override string StoreName => "redis";

    protected override async Task<ISessionStore> CreateStoreAsync(TimeSpan timeout)
    {
        Assert.True(redis.OwnsProcess, "This test kills its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = redis.Configuration + ",abortConnect=false", OperationTimeout = timeout });
        await UntilAnswersAsync(store);
        return store;
    }

    /// <summary>Waits until the store answers: the first connection can take longer than a short operation timeout on a busy machine.</summary>
    internal static Task UntilAnswersAsync(ISessionStore store)
        => ServerProcess.UntilAsync(
            async () =>
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
            },
            TimeSpan.FromSeconds(30),
            "the store answers");

    protected override Task StopServerAsync()
    {
        redis.Kill();
        return Task.CompletedTask;
    }

    protected override Task StartServerAsync() => redis.StartAsync();
}

/// <summary>PostgreSQL stopped under load (fast shutdown) and started again.</summary>
public sealed class PostgresFailFastTests(PostgresServerFixture postgres, ITestOutputHelper output)
    : FailFastUnderLoadTests(output), IClassFixture<PostgresServerFixture>
{
    protected override string StoreName => "postgres";

    protected override async Task<ISessionStore> CreateStoreAsync(TimeSpan timeout)
    {
        if (postgres.IsExternal)
        {
            await postgres.StartOwnServerAsync();
        }

        // The schema with a set-up timeout: a 1 s DDL statement can time out on a busy 2-core machine before the test starts.
        await using (var setUp = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = postgres.ConnectionString,
            CommandTimeout = TimeSpan.FromSeconds(30),
            CleanupInterval = Timeout.InfiniteTimeSpan,
        }))
        {
            await setUp.CreateSchemaAsync();
        }

        var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = postgres.ConnectionString,
            CommandTimeout = timeout,
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });
        await RedisFailFastTests.UntilAnswersAsync(store);
        return store;
    }

    protected override Task StopServerAsync() => postgres.StopAsync();

    protected override Task StartServerAsync() => postgres.StartAsync();
}
