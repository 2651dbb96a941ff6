using System.Diagnostics;
using System.Globalization;
using ClusterSession.Testing.Servers;
using Xunit;
using Xunit.Abstractions;

namespace ClusterSession.Redis.Tests;

/// <summary>A redis-server of its own, killed and restarted mid-run.</summary>
public sealed class FaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(1);
    private readonly RedisServerFixture _server = new();

    public Task InitializeAsync() => _server.InitializeAsync();

    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Killed_server_gives_the_typed_error_within_the_timeout_and_the_same_store_recovers()
    {
        Assert.True(_server.OwnsProcess, "The fault test needs a redis-server it can kill; unset CLUSTERSESSION_REDIS.");
        var time = TestStores.NewClock();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = _server.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
            OperationTimeout = OperationTimeout,
        }, time);
        // The first call connects within the short timeout; on a loaded machine that may take a few tries.
        await ServerProcess.UntilAsync(
            async () =>
            {
                try
                {
                    return await store.LoadAsync(SessionId.Create()) is null;
                }
                catch (SessionStoreUnavailableException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(20),
            "the store connects");
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        Assert.True(await store.CreateAsync(session));
        Assert.NotNull(await store.LoadAsync(session.Id!));

        _server.Kill();

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(session.Id!));
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, OperationTimeout + TimeSpan.FromSeconds(5));
        Assert.Contains("Redis", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () =>
            await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1] })));
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CreateAsync(
            SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8))));

        // With no primary reachable, a count is an outage too, never 0 sessions.
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CountAsync());

        await _server.StartAsync();

        // The restarted server is empty (no persistence) and has no scripts loaded: the store must reconnect and reload them.
        var fresh = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await ServerProcess.UntilAsync(
            async () =>
            {
                try
                {
                    return await store.CreateAsync(fresh);
                }
                catch (SessionStoreUnavailableException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            "the store works again after the restart");
        Assert.NotNull(await store.LoadAsync(fresh.Id!));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(fresh.Id!, new Dictionary<string, byte[]> { ["a"] = [1] })));
        Assert.Null(await store.LoadAsync(session.Id!));
    }

    [Fact]
    public async Task Calls_against_a_killed_server_fail_at_once_not_after_the_timeout_and_the_store_heals()
    {
        Assert.True(_server.OwnsProcess, "The fault test needs a redis-server it can kill; unset CLUSTERSESSION_REDIS.");
        var timeout = TimeSpan.FromSeconds(5);
        var time = TestStores.NewClock();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = _server.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
            OperationTimeout = timeout,
        }, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        Assert.True(await store.CreateAsync(session));

        _server.Kill();

        // Bounded in count and time: 20 calls, each bounded by the store's own timeout.
        var durations = new List<TimeSpan>();
        var total = Stopwatch.StartNew();
        for (var i = 0; i < 20 && total.Elapsed < TimeSpan.FromSeconds(30); i++)
        {
            var watch = Stopwatch.StartNew();
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(session.Id!));
            durations.Add(watch.Elapsed);
        }

        var sorted = durations.Order().ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{durations.Count} failed loads against a killed redis-server: first {durations[0].TotalMilliseconds:0} ms, p50 {sorted[sorted.Count / 2].TotalMilliseconds:0} ms, max {sorted[^1].TotalMilliseconds:0} ms (OperationTimeout {timeout.TotalMilliseconds:0} ms)"));
        Assert.Equal(20, durations.Count);

        // The first call may race the client noticing the closed socket; after it, nothing waits for a timeout
        // (a fifth of it leaves room for a loaded machine and is still far from it).
        Assert.All(durations.Skip(1), d => Assert.InRange(d, TimeSpan.Zero, timeout / 5));

        await _server.StartAsync();
        await ServerProcess.UntilAsync(
            async () =>
            {
                try
                {
                    return await store.LoadAsync(session.Id!) is null;
                }
                catch (SessionStoreUnavailableException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            "the store works again after the restart");
    }
}
