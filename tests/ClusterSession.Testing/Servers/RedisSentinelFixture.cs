using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A throwaway Sentinel deployment on free 127.0.0.1 ports: one primary, one replica and three sentinels
/// monitoring them as <see cref="ServiceName"/> (quorum 2, <c>down-after-milliseconds</c> 1000, so a dead
/// primary is replaced within a few seconds). Persistence off; every process in its own temporary directory.
/// Faults: <see cref="FailoverAsync"/> (planned), <see cref="KillPrimaryAsync"/> (crash), <see cref="Pause"/>/<see cref="Resume"/> (SIGSTOP/SIGCONT).
/// </summary>
public sealed class RedisSentinelFixture : IAsyncLifetime
{
    /// <summary>The Sentinel service name of the primary.</summary>
    public const string ServiceName = "mymaster";

    /// <summary>How long a primary may be silent before the sentinels consider it down, in milliseconds.</summary>
    public const int DownAfterMilliseconds = 1000;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-sentinel-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<int, Process> _data = [];
    private readonly List<Process> _sentinels = [];

    /// <summary>The ports of the two data nodes (the first starts as primary).</summary>
    public IReadOnlyList<int> DataPorts { get; private set; } = [];

    /// <summary>The ports of the three sentinels.</summary>
    public IReadOnlyList<int> SentinelPorts { get; private set; } = [];

    /// <summary>A StackExchange.Redis configuration string: the sentinels and <c>serviceName</c>.</summary>
    public string Configuration { get; private set; } = string.Empty;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var ports = new HashSet<int>();
        while (ports.Count < 5)
        {
            ports.Add(ServerProcess.FreePort());
        }

        var all = ports.ToArray();
        DataPorts = all[..2];
        SentinelPorts = all[2..];
        Configuration = string.Join(',', SentinelPorts.Select(p => $"127.0.0.1:{p}")) + $",serviceName={ServiceName}";
        var primary = DataPorts[0];
        await StartDataNodeAsync(primary, replicaOf: null);
        await StartDataNodeAsync(DataPorts[1], replicaOf: primary);
        foreach (var port in SentinelPorts)
        {
            var directory = Path.Combine(_directory, Text(port));
            Directory.CreateDirectory(directory);
            var file = Path.Combine(directory, "sentinel.conf");
            await File.WriteAllLinesAsync(file,
            [
                $"port {Text(port)}",
                "bind 127.0.0.1",
                $"dir {directory}",
                $"sentinel monitor {ServiceName} 127.0.0.1 {Text(primary)} 2",
                $"sentinel down-after-milliseconds {ServiceName} {Text(DownAfterMilliseconds)}",
                $"sentinel failover-timeout {ServiceName} 10000",
                $"sentinel parallel-syncs {ServiceName} 1",
            ]);
            _sentinels.Add(ServerProcess.Start(RedisServerFixture.RedisServerPath, [file, "--sentinel"], directory));
        }

        await UntilSettledAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>The port of the node the sentinels name as primary now.</summary>
    public async Task<int> PrimaryPortAsync()
    {
        foreach (var sentinel in SentinelPorts)
        {
            var reply = await ServerProcess.TryCommandAsync(sentinel, $"SENTINEL GET-MASTER-ADDR-BY-NAME {ServiceName}");
            var lines = reply?.Split("\r\n") ?? [];
            if (lines.Length >= 5 && int.TryParse(lines[4], NumberStyles.Integer, CultureInfo.InvariantCulture, out var port))
            {
                return port;
            }
        }

        throw new InvalidOperationException("No sentinel names a primary.");
    }

    /// <summary>The data node that is not the primary named by the sentinels.</summary>
    public async Task<int> ReplicaPortAsync()
    {
        var primary = await PrimaryPortAsync();
        return DataPorts.Single(p => p != primary);
    }

    /// <summary>
    /// Waits until every sentinel names the same primary, that node reports <c>role:master</c> with one
    /// connected, in-sync replica, and each sentinel knows the other two (so a failover can be authorised).
    /// </summary>
    public async Task UntilSettledAsync(TimeSpan timeout)
    {
        await ServerProcess.UntilAsync(
            async () =>
            {
                int primary;
                try
                {
                    primary = await PrimaryPortAsync();
                }
                catch (InvalidOperationException)
                {
                    return false;
                }

                foreach (var sentinel in SentinelPorts)
                {
                    var master = await ServerProcess.TryCommandAsync(sentinel, $"SENTINEL MASTER {ServiceName}");
                    if (master is null || !master.Contains($"\r\nport\r\n${Text(primary).Length}\r\n{Text(primary)}\r\n", StringComparison.Ordinal)
                        || !master.Contains("\r\nnum-other-sentinels\r\n$1\r\n2\r\n", StringComparison.Ordinal)
                        || !master.Contains("\r\nnum-slaves\r\n$1\r\n1\r\n", StringComparison.Ordinal)
                        || !master.Contains("\r\nflags\r\n$6\r\nmaster\r\n", StringComparison.Ordinal))
                    {
                        return false;
                    }

                    var replicas = await ServerProcess.TryCommandAsync(sentinel, $"SENTINEL REPLICAS {ServiceName}");
                    if (replicas is null || !replicas.Contains("\r\nflags\r\n$5\r\nslave\r\n", StringComparison.Ordinal))
                    {
                        return false;
                    }
                }

                var info = await ServerProcess.TryCommandAsync(primary, "INFO replication");
                var replica = DataPorts.Single(p => p != primary);
                var replicaInfo = await ServerProcess.TryCommandAsync(replica, "INFO replication");
                return info is not null && info.Contains("role:master", StringComparison.Ordinal) && info.Contains("connected_slaves:1", StringComparison.Ordinal)
                    && replicaInfo is not null && replicaInfo.Contains("master_link_status:up", StringComparison.Ordinal);
            },
            timeout,
            "the Sentinel deployment has one primary, one in-sync replica and three sentinels that agree");
    }

    /// <summary>A planned failover (<c>SENTINEL FAILOVER</c>); returns without waiting for it to finish.</summary>
    public async Task FailoverAsync()
    {
        var reply = await ServerProcess.TryCommandAsync(SentinelPorts[0], $"SENTINEL FAILOVER {ServiceName}");
        if (reply?.StartsWith("+OK", StringComparison.Ordinal) != true)
        {
            throw new InvalidOperationException($"SENTINEL FAILOVER was refused: {reply}");
        }
    }

    /// <summary>Kills the current primary (a crash); returns its port.</summary>
    public async Task<int> KillPrimaryAsync() => Kill(await PrimaryPortAsync());

    /// <summary>Kills the replica (a crash); returns its port. <see cref="RestartAsReplicaAsync"/> brings it back.</summary>
    public async Task<int> KillReplicaAsync() => Kill(await ReplicaPortAsync());

    /// <summary>Restarts a killed data node on its port as a replica of the current primary (as an operator would).</summary>
    public async Task RestartAsReplicaAsync(int port) => await StartDataNodeAsync(port, await PrimaryPortAsync());

    /// <summary>Stops a data node with SIGSTOP: its sockets stay open, it answers nothing.</summary>
    public void Pause(int port) => Signal(port, "STOP");

    /// <summary>Resumes a node stopped with <see cref="Pause"/>.</summary>
    public void Resume(int port) => Signal(port, "CONT");

    /// <summary>The process id of a running data node.</summary>
    public int ProcessId(int port) => _data[port].Id;

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        foreach (var process in _sentinels.Concat(_data.Values))
        {
            try
            {
                // A paused process must be resumed to die cleanly.
                Process.Start("kill", ["-CONT", process.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }

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

    private int Kill(int port)
    {
        ServerProcess.Stop(_data[port]);
        _data.Remove(port);
        return port;
    }

    private void Signal(int port, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _data[port].Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5000);
    }

    private async Task StartDataNodeAsync(int port, int? replicaOf)
    {
        var directory = Path.Combine(_directory, Text(port));
        Directory.CreateDirectory(directory);
        List<string> arguments = ["--port", Text(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory];
        if (replicaOf is { } primary)
        {
            arguments.AddRange(["--replicaof", "127.0.0.1", Text(primary)]);
        }

        _data[port] = ServerProcess.Start(RedisServerFixture.RedisServerPath, arguments, directory);
        await ServerProcess.UntilAsync(
            async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20),
            $"redis-server answers on port {port}");
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
