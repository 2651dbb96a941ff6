using System.Diagnostics;
using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>A redis-server of its own, killed and restarted mid-run.</summary>
public sealed class FaultTests : IAsyncLifetime
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
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        Assert.True(await store.CreateAsync(session));
        Assert.NotNull(await store.LoadAsync(session.Id));

        _server.Kill();

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(session.Id));
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, OperationTimeout + TimeSpan.FromSeconds(5));
        Assert.Contains("Redis", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () =>
            await store.SaveAsync(new SessionChanges(session.Id, new Dictionary<string, byte[]> { ["a"] = [1] })));
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CreateAsync(
            SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8))));

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
        Assert.NotNull(await store.LoadAsync(fresh.Id));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(fresh.Id, new Dictionary<string, byte[]> { ["a"] = [1] })));
        Assert.Null(await store.LoadAsync(session.Id));
    }
}
