using System.Diagnostics;
using Xunit;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A throwaway redis-server on a free 127.0.0.1 port, with persistence off. Set CLUSTERSESSION_REDIS
/// (host:port) to use an existing server instead; tests isolate themselves by key prefix.
/// </summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    /// <summary>The redis-server binary.</summary>
    public const string RedisServerPath = "/usr/bin/redis-server";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-redis-" + Guid.NewGuid().ToString("N"));
    private Process? _process;

    /// <summary>The port, or 0 when an existing server is used.</summary>
    public int Port { get; private set; }

    /// <summary>A StackExchange.Redis configuration string for the server.</summary>
    public string Configuration { get; private set; } = string.Empty;

    /// <summary>Whether this fixture runs the server process (and so can stop and restart it).</summary>
    public bool OwnsProcess => Port != 0;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var existing = Environment.GetEnvironmentVariable("CLUSTERSESSION_REDIS");
        if (!string.IsNullOrWhiteSpace(existing))
        {
            Configuration = existing;
            return;
        }

        Directory.CreateDirectory(_directory);
        Port = ServerProcess.FreePort();
        Configuration = $"127.0.0.1:{Port}";
        await StartAsync();
    }

    /// <summary>Starts the server (again) on <see cref="Port"/> and waits until it answers PING.</summary>
    public async Task StartAsync()
    {
        if (Port == 0)
        {
            throw new InvalidOperationException("This fixture uses an existing server (CLUSTERSESSION_REDIS) and cannot start one.");
        }

        _process = ServerProcess.Start(
            RedisServerPath,
            ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _directory],
            _directory);
        await ServerProcess.UntilAsync(
            async () => (await ServerProcess.TryCommandAsync(Port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20),
            $"redis-server answers on port {Port}");
    }

    /// <summary>Stops the server process with SIGSTOP: connections stay open and nothing is answered, a hung server.</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    /// <summary>Resumes a paused server with SIGCONT.</summary>
    public Task ResumeAsync() => SignalAsync("-CONT");

    /// <summary>Kills the server process (a crash, as far as clients can tell).</summary>
    public void Kill()
    {
        ServerProcess.Stop(_process);
        _process = null;
    }

    private async Task SignalAsync(string signal)
    {
        var process = _process ?? throw new InvalidOperationException("This fixture runs no server process to signal.");
        await ServerProcess.RunAsync("kill", signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        Kill();
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
