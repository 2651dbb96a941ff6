using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A throwaway three-master Redis Cluster on free 127.0.0.1 ports, each node in its own temporary directory;
/// by default without replicas, with <see cref="ReplicasPerMaster"/> = 1 a replica per master (for failover).
/// Set CLUSTERSESSION_REDIS_CLUSTER (comma-separated host:port) to use an existing cluster.
/// Faults: <see cref="Kill"/> (SIGKILL) and <see cref="RestartAsync"/> (the node rejoins from its nodes.conf).
/// </summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private const int Masters = 3;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<int, Process> _processes = [];

    /// <summary>Replicas per master, 0 (the default) or more; <c>redis-cli --cluster create --cluster-replicas</c>.</summary>
    public int ReplicasPerMaster { get; init; }

    /// <summary>
    /// <c>cluster-node-timeout</c> in milliseconds: how long a master may be unreachable before it is considered
    /// failed and its replica promoted. Default 5000.
    /// </summary>
    public int NodeTimeoutMilliseconds { get; init; } = 5000;

    /// <summary>The node ports (empty for an existing cluster).</summary>
    public IReadOnlyList<int> Ports { get; private set; } = [];

    /// <summary>A StackExchange.Redis configuration string listing every node.</summary>
    public string Configuration { get; private set; } = string.Empty;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var existing = Environment.GetEnvironmentVariable("CLUSTERSESSION_REDIS_CLUSTER");
        if (!string.IsNullOrWhiteSpace(existing))
        {
            Configuration = existing;
            return;
        }

        var ports = new List<int>();
        for (var i = 0; i < Masters * (1 + ReplicasPerMaster); i++)
        {
            int port;
            do
            {
                port = ServerProcess.FreePort(alsoPlus10000: true);
            }
            while (ports.Contains(port) || ports.Contains(port + 10000) || ports.Contains(port - 10000));
            ports.Add(port);
        }

        Ports = ports;
        Configuration = string.Join(',', ports.Select(p => $"127.0.0.1:{p}"));
        foreach (var port in ports)
        {
            await StartNodeAsync(port);
        }

        await ServerProcess.RunAsync(
            "/usr/bin/redis-cli",
            [.. "--cluster create".Split(' '), .. ports.Select(p => $"127.0.0.1:{p}"), "--cluster-replicas", Text(ReplicasPerMaster), "--cluster-yes"]);
        await UntilSettledAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Waits until every running node reports <c>cluster_state:ok</c> and sees <see cref="Masters"/> masters
    /// serving all slots, and every replica's link to its master is up.
    /// </summary>
    public async Task UntilSettledAsync(TimeSpan timeout)
    {
        var expectedNodes = Masters * (1 + ReplicasPerMaster);
        await ServerProcess.UntilAsync(
            async () =>
            {
                foreach (var port in _processes.Keys)
                {
                    var info = await ServerProcess.TryCommandAsync(port, "CLUSTER INFO");
                    if (info is null || !info.Contains("cluster_state:ok", StringComparison.Ordinal)
                        || !info.Contains($"cluster_known_nodes:{Text(expectedNodes)}\r", StringComparison.Ordinal)
                        || !info.Contains("cluster_slots_ok:16384", StringComparison.Ordinal))
                    {
                        return false;
                    }

                    var replication = await ServerProcess.TryCommandAsync(port, "INFO replication");
                    if (replication is null || (replication.Contains("role:slave", StringComparison.Ordinal) && !replication.Contains("master_link_status:up", StringComparison.Ordinal)))
                    {
                        return false;
                    }
                }

                return true;
            },
            timeout,
            "every cluster node reports cluster_state:ok, all slots served and every replica in sync");
    }

    /// <summary>The port of the master serving <paramref name="slot"/>, as the first answering node sees it.</summary>
    public async Task<int> MasterOfSlotAsync(int slot)
    {
        foreach (var port in _processes.Keys)
        {
            var nodes = await ServerProcess.TryCommandAsync(port, "CLUSTER NODES");
            if (nodes is null)
            {
                continue;
            }

            foreach (var line in nodes.Split('\n'))
            {
                var parts = line.Trim().Split(' ');
                if (parts.Length < 9 || !parts[2].Contains("master", StringComparison.Ordinal) || parts[2].Contains("fail", StringComparison.Ordinal))
                {
                    continue;
                }

                foreach (var range in parts[8..])
                {
                    var bounds = range.Split('-');
                    if (bounds[0].StartsWith('[') || !int.TryParse(bounds[0], CultureInfo.InvariantCulture, out var from))
                    {
                        continue;
                    }

                    var to = bounds.Length > 1 ? int.Parse(bounds[1], CultureInfo.InvariantCulture) : from;
                    if (slot >= from && slot <= to)
                    {
                        return int.Parse(parts[1].Split('@')[0].Split(':')[1], CultureInfo.InvariantCulture);
                    }
                }
            }

            break;
        }

        throw new InvalidOperationException($"No master serves slot {slot}.");
    }

    /// <summary>The hash slot of <paramref name="key"/> (<c>CLUSTER KEYSLOT</c>).</summary>
    public async Task<int> SlotOfAsync(string key)
    {
        foreach (var port in _processes.Keys)
        {
            var reply = await ServerProcess.TryCommandAsync(port, $"CLUSTER KEYSLOT {key}");
            if (reply is not null && reply.StartsWith(':'))
            {
                return int.Parse(reply.AsSpan(1).Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("No cluster node answers CLUSTER KEYSLOT.");
    }

    /// <summary>Kills a node with SIGKILL (a crash). <see cref="RestartAsync"/> brings it back.</summary>
    public void Kill(int port)
    {
        ServerProcess.Stop(_processes[port]);
        _processes.Remove(port);
    }

    /// <summary>Restarts a killed node on its port and directory; it rejoins from its nodes.conf (a failed-over master as a replica).</summary>
    public Task RestartAsync(int port) => StartNodeAsync(port);

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        foreach (var process in _processes.Values)
        {
            ServerProcess.Stop(process);
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        return Task.CompletedTask;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private async Task StartNodeAsync(int port)
    {
        var text = Text(port);
        var directory = Path.Combine(_directory, text);
        Directory.CreateDirectory(directory);
        _processes[port] = ServerProcess.Start(
            RedisServerFixture.RedisServerPath,
            ["--port", text, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", Text(NodeTimeoutMilliseconds)],
            directory);
        await ServerProcess.UntilAsync(
            async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20),
            $"cluster node {port} answers");
    }
}
