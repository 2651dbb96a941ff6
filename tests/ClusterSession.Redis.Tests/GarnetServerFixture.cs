using System.Globalization;
using ClusterSession.Testing.Servers;
using Garnet;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>Microsoft Garnet embedded in the test process on a free 127.0.0.1 port, Lua enabled.</summary>
public sealed class GarnetServerFixture : IAsyncLifetime
{
    private GarnetServer? _server;

    /// <summary>A StackExchange.Redis configuration string for the server.</summary>
    public string Configuration { get; private set; } = string.Empty;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var port = ServerProcess.FreePort();
        _server = new GarnetServer(
        [
            "--bind", "127.0.0.1",
            "--port", port.ToString(CultureInfo.InvariantCulture),
            "--lua", "true",
            // Scripts must be atomic (as in Redis); without this Garnet runs them without key locks.
            "--lua-transaction-mode", "true",
            "--memory", "256m",
            "--index", "1m",
            "--logger-level", "Warning",
        ]);
        _server.Start();
        Configuration = $"127.0.0.1:{port}";
        await ServerProcess.UntilAsync(
            async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20),
            $"Garnet answers on port {port}");
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        _server?.Dispose();
        return Task.CompletedTask;
    }
}
