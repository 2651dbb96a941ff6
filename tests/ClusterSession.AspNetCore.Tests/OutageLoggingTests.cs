using System.Net;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// What a real store outage, bad cookies and limit errors leave in the logs: one Error entry per request that
/// failed on the store (also when the application caught the failure itself), none for bad input, and no session
/// id, attribute name or value anywhere. Inherited once per store whose server the test stops.
/// </summary>
public abstract class OutageLoggingTests : IAsyncLifetime
{
    private const string Name = "secretname";
    private const string Value = "secretvalue";
    private readonly ListLoggerProvider _logs = new();
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    /// <summary>A store on a server of the test's own, which <see cref="StopServerAsync"/> stops.</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync();

    protected abstract Task StopServerAsync();

    public async Task InitializeAsync()
        => _cluster = await AppCluster.StartAsync(await CreateStoreAsync(), instances: 1, options => options.StoreTimeout = TimeSpan.FromSeconds(3), _logs);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Each_failed_request_logs_one_error_and_no_log_holds_an_id_name_or_value()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[0], $"/s/set/{Name}/{Value}")).Status);
        var id = browser.Cookies[".ClusterSession"];
        var ids = new List<string> { id };

        // Bad input: answered, never an error in the logs.
        foreach (var bad in new[] { "short", new string('A', 300), id[..^1] + "=", SessionId.Create() })
        {
            ids.Add(bad);
            var stranger = new Browser();
            stranger.Cookies[".ClusterSession"] = bad;
            Assert.Equal(HttpStatusCode.OK, (await stranger.GetAsync(Cluster[0], $"/s/get/{Name}")).Status);
            Assert.Equal(HttpStatusCode.OK, (await stranger.GetAsync(Cluster[0], "/noop")).Status);
        }

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await browser.PostAsync(Cluster[0], $"/s/sized/{Name}/{SessionLimits.Default.MaxValueBytes + 1}")).Status);
        Assert.Equal(Value, (await browser.GetAsync(Cluster[0], $"/s/get/{Name}")).Body);
        await UntilRequestsLoggedAsync(11);
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Error);

        await StopServerAsync();
        var failed = new[]
        {
            await browser.GetAsync(Cluster[0], $"/s/get/{Name}"),
            await browser.PostAsync(Cluster[0], $"/s/set-write-body/{Name}/{Value}2"),
            await browser.PostAsync(Cluster[0], $"/c/set/{Name}/{Value}3"),
            await browser.PostAsync(Cluster[0], "/login/alice"),
        };
        var caught = await browser.GetAsync(Cluster[0], $"/s/get-caught/{Name}");

        // A page that does not use the session still answers; its touch after the response fails in the background.
        var visitor = new Browser();
        var visitorId = SessionId.Create();
        ids.Add(visitorId);
        visitor.Cookies[".ClusterSession"] = visitorId;
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(Cluster[0], "/noop")).Status);

        Assert.All(failed, r => Assert.Equal(HttpStatusCode.ServiceUnavailable, r.Status));
        Assert.Equal("caught", caught.Body);
        await UntilRequestsLoggedAsync(17);
        Assert.Single(_logs.Entries, e => e.EventId.Name == "TouchFailed" && e.Level == LogLevel.Warning);
        var errors = _logs.Entries.Where(e => e.Level >= LogLevel.Error).ToList();
        Assert.Equal(failed.Length + 1, errors.Count);
        Assert.All(errors, e => Assert.Equal("ClusterSession.AspNetCore", e.Category));

        // Every entry of every category: ids; ClusterSession's own and every warning or error: names and values too
        // (the host's request lines name the path, which in this test app holds them).
        foreach (var entry in _logs.Entries)
        {
            foreach (var secret in ids)
            {
                Assert.DoesNotContain(secret, entry.Text, StringComparison.Ordinal);
            }

            if (entry.Category.StartsWith("ClusterSession", StringComparison.Ordinal) || entry.Level >= LogLevel.Warning)
            {
                Assert.DoesNotContain(Name, entry.Text, StringComparison.Ordinal);
                Assert.DoesNotContain(Value, entry.Text, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>Waits until the host logged the end of <paramref name="count"/> requests, so every log entry of them is in.</summary>
    private async Task UntilRequestsLoggedAsync(int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (_logs.Entries.Count(e => e.Message.StartsWith("Request finished", StringComparison.Ordinal)) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Fewer than {count} requests finished within 20 s: " + string.Join(" | ", _logs.Entries.Select(e => e.Category + "/" + e.EventId + "/" + e.Message[..Math.Min(60, e.Message.Length)])));
            await Task.Delay(20);
        }

        var toucher = (Sessions.SessionToucher)Cluster.Apps[0].Services.GetService(typeof(Sessions.SessionToucher))!;
        await UntilAsync(() => toucher.InFlight == 0);
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The condition did not hold within 20 s.");
            await Task.Delay(20);
        }
    }
}

/// <summary>A redis-server of its own, killed.</summary>
public sealed class RedisOutageLoggingTests(RedisServerFixture redis) : OutageLoggingTests, IClassFixture<RedisServerFixture>
{
    protected override Task<ISessionStore> CreateStoreAsync()
    {
        Assert.True(redis.OwnsProcess, "This test kills its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");
        return Task.FromResult<ISessionStore>(new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = redis.Configuration + ",abortConnect=false",
            OperationTimeout = TimeSpan.FromSeconds(2),
        }));
    }

    protected override Task StopServerAsync()
    {
        redis.Kill();
        return Task.CompletedTask;
    }
}

/// <summary>A PostgreSQL server of its own, stopped.</summary>
public sealed class PostgresOutageLoggingTests : OutageLoggingTests, IAsyncLifetime
{
    private readonly PostgresServerFixture _postgres = new();

    async Task IAsyncLifetime.InitializeAsync()
    {
        await _postgres.StartOwnServerAsync();
        await InitializeAsync();
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        await _postgres.DisposeAsync();
    }

    protected override async Task<ISessionStore> CreateStoreAsync()
    {
        var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = _postgres.ConnectionString,
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });
        await store.CreateSchemaAsync();
        return store;
    }

    protected override Task StopServerAsync() => _postgres.StopAsync();
}
