using System.Diagnostics;
using System.Globalization;
using ClusterSession.Testing.Servers;
using Xunit;
using Xunit.Abstractions;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Failover under load on a Sentinel deployment of its own (primary, replica, three sentinels, 1 s detection):
/// three store instances (three "app nodes", each with its own multiplexer) and eight concurrent writers, each
/// writing distinct attributes of its own session, while the primary fails over. Counts requests by outcome,
/// measures the time to recovery and checks every acknowledged write afterwards. Bounded in count and time.
/// The figures go to the test output (docs/operations.md quotes them).
/// </summary>
public sealed class SentinelFailoverTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Nodes = 3;
    private const int Writers = 8;
    private const int MinThreads = 32;
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan BeforeFault = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(25);
    private static readonly TimeSpan AfterRecovery = TimeSpan.FromSeconds(2);
    private readonly RedisSentinelFixture _sentinel = new();

    public enum Fault
    {
        PlannedFailover,
        PrimaryKilled,
        PrimaryPaused,
    }

    public Task InitializeAsync() => _sentinel.InitializeAsync();

    public Task DisposeAsync() => _sentinel.DisposeAsync();

    [Theory]
    [InlineData(Fault.PlannedFailover, 1)]
    [InlineData(Fault.PrimaryKilled, 1)]
    [InlineData(Fault.PlannedFailover, 0)]
    [InlineData(Fault.PrimaryKilled, 0)]
    [InlineData(Fault.PrimaryPaused, 1)]
    [InlineData(Fault.PrimaryPaused, 0)]
    public async Task Every_node_recovers_by_itself_and_no_acknowledged_write_is_lost_when_waiting_for_a_replica(Fault fault, int waitForReplicas)
    {
        // As docs/operations.md advises for Sentinel: StackExchange.Redis re-discovers the primary with blocking calls on
        // pool threads while a node is down; with the default minimum (one per core) requests then wait for the pool to
        // grow, past their timeout (measured: 6.5 s for a 3 s timeout on 2 cores).
        ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
        ThreadPool.SetMinThreads(Math.Max(minWorkers, MinThreads), minIo);
        var prefix = TestStores.UniquePrefix();
        var stores = Enumerable.Range(0, Nodes).Select(_ => new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = _sentinel.Configuration,
            KeyPrefix = prefix,
            OperationTimeout = OperationTimeout,
            WaitForReplicas = waitForReplicas,
            ReplicaWaitTimeout = TimeSpan.FromMilliseconds(500),
        })).ToArray();
        try
        {
            var sessions = new string[Writers];
            for (var w = 0; w < Writers; w++)
            {
                var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
                Assert.True(await stores[w % Nodes].CreateAsync(session));
                sessions[w] = session.Id!;
            }

            var run = new FailoverRun(Writers);
            var clock = Stopwatch.StartNew();
            using var stop = new CancellationTokenSource(RunLimit);
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => FailoverLoad.WriteAsync(w, stores, sessions[w], run, clock, stop.Token))).ToArray();

            await Task.Delay(BeforeFault);
            var faultAt = clock.Elapsed;
            int? killed = null;
            int? paused = null;
            switch (fault)
            {
                case Fault.PlannedFailover:
                    await _sentinel.FailoverAsync();
                    break;
                case Fault.PrimaryKilled:
                    killed = await _sentinel.KillPrimaryAsync();
                    break;
                default:
                    // Silent past Sentinel's detection time (its replica is promoted meanwhile), then back, still believing it is the primary.
                    paused = await _sentinel.PrimaryPortAsync();
                    _sentinel.Pause(paused.Value);
                    break;
            }

            // Recovered: some write failed after the fault, and every writer has succeeded since the last failure.
            var restarted = false;
            await ServerProcess.UntilAsync(
                async () =>
                {
                    if (killed is { } port && !restarted && clock.Elapsed - faultAt > TimeSpan.FromSeconds(4))
                    {
                        // An operator (or systemd) brings the crashed node back; Sentinel makes it a replica of the new primary.
                        restarted = true;
                        await _sentinel.RestartAsReplicaAsync(port);
                    }

                    if (paused is { } stopped && !restarted && clock.Elapsed - faultAt > TimeSpan.FromSeconds(4))
                    {
                        restarted = true;
                        _sentinel.Resume(stopped);
                    }

                    return run.RecoveredSince(faultAt, clock.Elapsed) || stop.IsCancellationRequested;
                },
                RunLimit,
                "every writer succeeds again after the fault");
            await Task.Delay(AfterRecovery);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            var runTime = clock.Elapsed;
            if (killed is { } dead && !restarted)
            {
                await _sentinel.RestartAsReplicaAsync(dead);
            }

            if (paused is { } sleeping && !restarted)
            {
                _sentinel.Resume(sleeping);
            }

            // Every acknowledged attribute must be in its session, read through a store that saw none of the fault.
            await using var checker = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = _sentinel.Configuration, KeyPrefix = prefix, OperationTimeout = OperationTimeout });
            var lost = 0;
            for (var w = 0; w < Writers; w++)
            {
                var session = await checker.LoadAsync(sessions[w]);
                foreach (var (name, value) in run.Acknowledged[w])
                {
                    // Each writer is sequential, so a stored value below the last acknowledged one is a lost write.
                    if (session is null || !session.Attributes.TryGetValue(name, out var stored) || BitConverter.ToInt64(stored) < value)
                    {
                        lost++;
                    }
                }
            }

            var recovery = run.LastFailure is { } last ? last - faultAt : TimeSpan.Zero;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fault={fault} waitForReplicas={waitForReplicas} nodes={Nodes} writers={Writers} run={runTime.TotalSeconds:0.0}s requests={run.Total} ok={run.Ok} unavailable={run.Unavailable} gone={run.Gone} other={run.Other} " +
                $"recovery={recovery.TotalSeconds:0.0}s slowest={run.Slowest.TotalMilliseconds:0}ms acknowledgedThenLost={lost}"));
            foreach (var group in run.Messages.GroupBy(m => m.Length > 90 ? m[..90] : m).OrderByDescending(g => g.Count()).Take(6))
            {
                output.WriteLine($"  {group.Count()} x {group.Key}");
            }

            // Every node writes again without a restart.
            foreach (var store in stores)
            {
                Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(sessions[0], new Dictionary<string, byte[]> { ["final"] = [1] })));
            }

            Assert.Equal(0, run.Other);
            Assert.InRange(run.Slowest, TimeSpan.Zero, OperationTimeout + TimeSpan.FromMilliseconds(500));
            Assert.True(run.Ok > 0);
            if (waitForReplicas > 0)
            {
                Assert.Equal(0, lost);
                Assert.Equal(0, run.Gone);
            }
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
    }
}
