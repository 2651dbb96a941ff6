using System.Diagnostics;
using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The conformance suite through Sentinel with every write waiting for the replica (WAIT pipelined after each script).</summary>
[Collection(SentinelRedis.Name)]
public sealed class SentinelWaitForReplicasConformanceTests(RedisSentinelFixture sentinel) : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => Task.FromResult<ISessionStore>(new RedisSessionStore(
        new RedisSessionStoreOptions
        {
            Configuration = sentinel.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
            Limits = Limits,
            WaitForReplicas = 1,
        },
        time));

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
        => TestStores.CreateWithOptions(sentinel.Configuration, o =>
        {
            ((RedisSessionStoreOptions)o).WaitForReplicas = 1;
            configure(o);
        });
}

/// <summary>A store that owns its multiplexer, configured with the sentinels and a service name, as an application would.</summary>
[Collection(SentinelRedis.Name)]
public sealed class SentinelTests(RedisSentinelFixture sentinel)
{
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Configuration_with_sentinels_and_serviceName_reaches_the_primary()
    {
        var time = TestStores.NewClock();
        await using var store = NewStore(time, waitForReplicas: 0);
        var session = NewSession(time);
        Assert.True(await store.CreateAsync(session));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1] })));
        var loaded = await store.LoadAsync(session.Id!);
        Assert.NotNull(loaded);
        Assert.Equal([1], loaded.Attributes["a"]);
    }

    [Fact]
    public async Task WaitForReplicas_acknowledges_writes_while_the_replica_is_up_and_fails_them_cleanly_while_it_is_paused()
    {
        var time = TestStores.NewClock();
        await using var store = NewStore(time, waitForReplicas: 1);
        var session = NewSession(time);
        Assert.True(await store.CreateAsync(session));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1] })));

        var replica = await sentinel.ReplicaPortAsync();
        sentinel.Pause(replica);
        try
        {
            var watch = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () =>
                await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["b"] = [2] })));
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(400), OperationTimeout + TimeSpan.FromSeconds(1));
            Assert.Contains("0 of the 1 replica", error.Message, StringComparison.Ordinal);
            Assert.Contains("WaitForReplicas", error.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CreateAsync(NewSession(time)));

            // Reads never wait for replicas.
            Assert.NotNull(await store.LoadAsync(session.Id!));
        }
        finally
        {
            sentinel.Resume(replica);
        }

        await sentinel.UntilSettledAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["c"] = [3] })));
    }

    private RedisSessionStore NewStore(TimeProvider time, int waitForReplicas) => new(
        new RedisSessionStoreOptions
        {
            Configuration = sentinel.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
            OperationTimeout = OperationTimeout,
            WaitForReplicas = waitForReplicas,
            ReplicaWaitTimeout = TimeSpan.FromMilliseconds(500),
        },
        time);

    private static SessionSnapshot NewSession(TimeProvider time)
        => SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
}
