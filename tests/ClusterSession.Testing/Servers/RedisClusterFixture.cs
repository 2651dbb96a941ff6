using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A throwaway three-master Redis Cluster (no replicas) on free 127.0.0.1 ports, each node in its own
/// temporary directory. Set CLUSTERSESSION_REDIS_CLUSTER (comma-separated host:port) to use an existing cluster.
/// </summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private const int Masters = 3;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly List<Process> _processes = [];

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
        for (var i = 0; i < Masters; i++)
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
            var text = port.ToString(CultureInfo.InvariantCulture);
            var directory = Path.Combine(_directory, text);
            Directory.CreateDirectory(directory);
            _processes.Add(ServerProcess.Start(
                RedisServerFixture.RedisServerPath,
                ["--port", text, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"],
                directory));
        }

        foreach (var port in ports)
        {
            await ServerProcess.UntilAsync(
                async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(20),
                $"cluster node {port} answers");
        }

        await ServerProcess.RunAsync(
            "/usr/bin/redis-cli",
            [.. "--cluster create".Split(' '), .. ports.Select(p => $"127.0.0.1:{p}"), "--cluster-replicas", "0", "--cluster-yes"]);
        foreach (var port in ports)
        {
            await ServerProcess.UntilAsync(
                async () => (await ServerProcess.TryCommandAsync(port, "CLUSTER INFO"))?.Contains("cluster_state:ok", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(30),
                $"cluster node {port} reports cluster_state:ok");
        }
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        foreach (var process in _processes)
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
}
