using System.Diagnostics;
using System.Globalization;
using ClusterSession.Testing.Servers;
using Xunit;
using Xunit.Abstractions;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Scaling a Redis Cluster out under load: a fourth master joins, and the slot of a session being written is
/// migrated to it key by key. While the slot migrates, the old owner answers <c>ASK</c> with the new node, which the
/// store's connection has never seen; afterwards <c>MOVED</c>. No request may fail and no write may be lost.
/// </summary>
public sealed class ClusterScaleOutTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Writers = 4;
    private const int MaxWritesPerWriter = 50_000;
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(3);
    private readonly RedisClusterFixture _cluster = new();
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-cluster-new-" + Guid.NewGuid().ToString("N"));
    private Process? _newNode;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public async Task DisposeAsync()
    {
        ServerProcess.Stop(_newNode);
        await _cluster.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    [Fact]
    public async Task Migrating_a_slot_to_a_new_master_under_load_fails_no_request_and_loses_no_write()
    {
        Assert.True(_cluster.Ports.Count == 3, "The scale-out test needs a cluster it started itself; unset CLUSTERSESSION_REDIS_CLUSTER.");
        var prefix = TestStores.UniquePrefix();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = _cluster.Configuration,
            KeyPrefix = prefix,
            OperationTimeout = OperationTimeout,
        });
        var sessions = new string[Writers];
        for (var w = 0; w < Writers; w++)
        {
            var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1));
            Assert.True(await store.CreateAsync(session));
            sessions[w] = session.Id!;
        }

        // The new master joins the cluster with no slots; the store's connection does not know it.
        var port = ServerProcess.FreePort(alsoPlus10000: true);
        var text = port.ToString(CultureInfo.InvariantCulture);
        Directory.CreateDirectory(_directory);
        _newNode = ServerProcess.Start(
            RedisServerFixture.RedisServerPath,
            ["--port", text, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _directory,
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"],
            _directory);
        await ServerProcess.UntilAsync(async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(20), "the new node answers");
        await ExpectOkAsync(_cluster.Ports[0], $"CLUSTER MEET 127.0.0.1 {text}");
        await ServerProcess.UntilAsync(
            async () =>
            {
                foreach (var node in _cluster.Ports.Append(port))
                {
                    var nodes = await ServerProcess.TryCommandAsync(node, "CLUSTER NODES");
                    var info = await ServerProcess.TryCommandAsync(node, "CLUSTER INFO");
                    if (nodes is null || !nodes.Contains($"127.0.0.1:{text}@", StringComparison.Ordinal) || nodes.Contains("handshake", StringComparison.Ordinal)
                        || nodes.Split('\n').Count(l => l.Contains("master", StringComparison.Ordinal)) < 4 || info?.Contains("cluster_state:ok", StringComparison.Ordinal) != true)
                    {
                        return false;
                    }
                }

                return true;
            },
            TimeSpan.FromSeconds(20),
            "every node knows the new master and the cluster is ok");

        var key = prefix + "s:{" + sessions[0] + "}";
        var slot = int.Parse((await ServerProcess.TryCommandAsync(port, $"CLUSTER KEYSLOT {key}"))!.TrimStart(':').Trim(), CultureInfo.InvariantCulture);
        var source = await _cluster.MasterOfSlotAsync(slot);
        var sourceId = await NodeIdAsync(source);
        var targetId = await NodeIdAsync(port);

        var failures = new List<string>();
        var ok = 0;
        var acknowledged = new long[Writers];
        var slowest = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (long i = 1; i <= MaxWritesPerWriter && !stop.IsCancellationRequested; i++)
            {
                var started = clock.Elapsed;
                try
                {
                    var result = await store.SaveAsync(new SessionChanges(sessions[w], new Dictionary<string, byte[]> { ["n"] = BitConverter.GetBytes(i) }));
                    lock (failures)
                    {
                        if (result == SessionSaveResult.Saved)
                        {
                            ok++;
                            acknowledged[w] = i;
                        }
                        else
                        {
                            failures.Add("gone");
                        }
                    }
                }
                catch (SessionStoreUnavailableException ex)
                {
                    lock (failures)
                    {
                        failures.Add(ex.Message);
                    }
                }
                finally
                {
                    lock (failures)
                    {
                        slowest = clock.Elapsed - started > slowest ? clock.Elapsed - started : slowest;
                    }
                }
            }
        })).ToArray();

        // Migrate the slot as redis-cli --cluster reshard does, holding it in the migrating state for a while.
        await Task.Delay(500);
        await ExpectOkAsync(port, $"CLUSTER SETSLOT {slot} IMPORTING {sourceId}");
        await ExpectOkAsync(source, $"CLUSTER SETSLOT {slot} MIGRATING {targetId}");
        // Every key of the slot, as the reshard moves them: the session's (the store names it by its handle after a slot tag
        // chosen to share the slot of the id's hash tag, so `key` names the slot, not the stored key).
        var inSlot = (await ServerProcess.TryCommandAsync(source, $"CLUSTER GETKEYSINSLOT {slot} 1000"))!
            .Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Where(l => l[0] is not ('*' or '$')).ToArray();
        Assert.Contains(inSlot, k => k.StartsWith(prefix + "s3:", StringComparison.Ordinal));
        var reply = await ServerProcess.TryCommandAsync(source, $"MIGRATE 127.0.0.1 {text} \"\" 0 5000 KEYS {string.Join(' ', inSlot)}");
        Assert.True(reply?.StartsWith("+OK", StringComparison.Ordinal) == true || reply?.StartsWith("+NOKEY", StringComparison.Ordinal) == true, reply);
        await Task.Delay(1500);
        await ExpectOkAsync(port, $"CLUSTER SETSLOT {slot} NODE {targetId}");
        await ExpectOkAsync(source, $"CLUSTER SETSLOT {slot} NODE {targetId}");
        await Task.Delay(1500);
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        var lost = 0;
        for (var w = 0; w < Writers; w++)
        {
            var session = await store.LoadAsync(sessions[w]);
            if (session is null || BitConverter.ToInt64(session.Attributes["n"]) < acknowledged[w])
            {
                lost++;
            }
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"slot migration under load: requests={ok + failures.Count} ok={ok} failed={failures.Count} slowest={slowest.TotalMilliseconds:0}ms lost={lost}"));
        foreach (var failure in failures.Distinct().Take(5))
        {
            output.WriteLine("  " + failure);
        }

        Assert.Empty(failures);
        Assert.Equal(0, lost);
        Assert.Equal(port, await _cluster.MasterOfSlotAsync(slot));
    }

    private static async Task<string> NodeIdAsync(int port)
    {
        var reply = await ServerProcess.TryCommandAsync(port, "CLUSTER MYID") ?? throw new InvalidOperationException($"Node {port} does not answer.");
        return reply.Split("\r\n")[1];
    }

    private static async Task ExpectOkAsync(int port, string command)
    {
        var reply = await ServerProcess.TryCommandAsync(port, command);
        Assert.True(reply?.StartsWith("+OK", StringComparison.Ordinal) == true, $"{command}: {reply}");
    }
}
