using System.Diagnostics;
using System.Globalization;

namespace ClusterSession.Bench.Postgres;

/// <summary>
/// A throwaway PostgreSQL server for the benchmark: <c>initdb</c> in a temporary directory on disk,
/// <c>pg_ctl start</c> on a free 127.0.0.1 port, stopped and deleted on dispose (and stopped with
/// <c>-m immediate</c> if the process exits first). As root it runs as the <c>postgres</c> system user
/// via <c>runuser</c>, because initdb refuses root. Unlike the test fixture it keeps the durable
/// defaults: fsync on, synchronous_commit on, full_page_writes on; only max_connections is raised.
/// </summary>
internal sealed class PostgresServerProcess : IAsyncDisposable
{
    private const string SystemUser = "postgres";
    private readonly string _bin;
    private readonly string _directory;
    private readonly bool _asSystemUser;

    private PostgresServerProcess(string bin, string directory, bool asSystemUser, int port)
    {
        _bin = bin;
        _directory = directory;
        _asSystemUser = asSystemUser;
        Port = port;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public int Port { get; }

    /// <summary>An Npgsql connection string for a direct (unproxied) connection.</summary>
    public string ConnectionString => ConnectionStringFor(Port);

    private string DataDirectory => Path.Combine(_directory, "data");

    public static string ConnectionStringFor(int port) => string.Create(CultureInfo.InvariantCulture,
        $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=10;Command Timeout=120;Max Auto Prepare=32;Maximum Pool Size=200");

    public static async Task<PostgresServerProcess> StartAsync(CancellationToken cancellationToken)
    {
        var bin = ClusterSession.Testing.Servers.PostgresBinaries.FindBinDirectory(" to run the PostgreSQL contenders");
        var asSystemUser = Environment.IsPrivilegedProcess;
        var directory = Path.Combine(Path.GetTempPath(), "clustersession-bench-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var server = new PostgresServerProcess(bin, directory, asSystemUser, FreePort.Next());
        try
        {
            if (asSystemUser)
            {
                await RunAsync("chown", [$"{SystemUser}:", directory], cancellationToken);
            }

            await server.RunToolAsync("initdb", ["-D", server.DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], cancellationToken);
            await server.StartServerAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Seconds of CPU the server has used (postmaster, backends and background processes, from /proc), or null
    /// when that cannot be read (not Linux, or the server is not running).
    /// </summary>
    public double? CpuSeconds()
    {
        try
        {
            var first = File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).FirstOrDefault();
            return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? ProcessCpu.TreeSeconds(pid) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether the server loads pg_stat_statements (for the store's command time): when the installation ships it
    /// (Debian's postgresql package does, in the lib directory beside bin).
    /// </summary>
    public bool HasStatementStatistics => File.Exists(Path.Combine(_bin, "..", "lib", "pg_stat_statements.so"));

    /// <summary>Starts the server (again) on the same port and waits until it accepts connections.</summary>
    public Task StartServerAsync(CancellationToken cancellationToken)
    {
        var options = string.Create(CultureInfo.InvariantCulture,
            $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=on -c synchronous_commit=on -c full_page_writes=on")
            + (HasStatementStatistics ? " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" : string.Empty);
        return RunToolAsync("pg_ctl", ["-D", DataDirectory, "-l", Path.Combine(_directory, "server.log"), "-o", options, "-w", "-t", "60", "start"], cancellationToken);
    }

    /// <summary>Stops the server: <c>fast</c> is a clean shutdown (checkpoint), <c>immediate</c> a crash (no checkpoint, recovery on start).</summary>
    public Task StopAsync(string mode, CancellationToken cancellationToken)
        => RunToolAsync("pg_ctl", ["-D", DataDirectory, "-m", mode, "-w", "-t", "60", "stop"], cancellationToken);

    public async ValueTask DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await StopAsync("immediate", CancellationToken.None);
            }
        }
        finally
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        // SIGTERM skips the harness's finally blocks; do not leave a postgres behind.
        try
        {
            RunToolAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "stop"], CancellationToken.None).Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // Already gone.
        }
    }

    private Task RunToolAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var file = Path.Combine(_bin, tool);
        return _asSystemUser
            ? RunAsync("runuser", ["-u", SystemUser, "--", file, .. arguments], cancellationToken)
            : RunAsync(file, arguments, cancellationToken);
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        // pg_ctl -l sends the server's own output to the log file, so these pipes close when the tool exits.
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stderr}{await stdout}");
        }
    }
}
