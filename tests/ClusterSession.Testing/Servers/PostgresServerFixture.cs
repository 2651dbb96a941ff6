using System.Globalization;
using Xunit;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A throwaway PostgreSQL server: <c>initdb</c> in a temporary directory, <c>pg_ctl start</c> on a free
/// 127.0.0.1 port (unix socket in the same directory), stopped and deleted afterwards. Binaries come
/// from the highest version under /usr/lib/postgresql/*/bin (Debian package <c>postgresql</c>).
/// initdb refuses to run as root, so as root the server runs as the <c>postgres</c> system user
/// (via <c>runuser</c>). Built for speed, not durability: trust authentication, fsync off,
/// synchronous_commit off, full_page_writes off; a crash of the test machine loses the data,
/// which is thrown away anyway.
/// The environment variable CLUSTERSESSION_POSTGRES, when set to a connection string, points the
/// fixture at an existing server instead (then <see cref="StopAsync"/> and <see cref="StartAsync"/> are unavailable).
/// </summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    /// <summary>The environment variable that names an existing server (an Npgsql connection string).</summary>
    public const string EnvironmentVariable = "CLUSTERSESSION_POSTGRES";

    private const string SystemUser = "postgres";

    private string? _directory;
    private string? _binDirectory;
    private bool _runAsSystemUser;

    /// <summary>The Npgsql connection string of the server (database and user <c>postgres</c>).</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>The TCP port on 127.0.0.1, or 0 for an external server.</summary>
    public int Port { get; private set; }

    /// <summary>Whether the server came from <see cref="EnvironmentVariable"/> rather than from this fixture.</summary>
    public bool IsExternal { get; private set; }

    private string DataDirectory => Path.Combine(_directory!, "data");

    private string LogFile => Path.Combine(_directory!, "server.log");

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            ConnectionString = external;
            IsExternal = true;
            return;
        }

        await StartOwnServerAsync();
    }

    /// <summary>Starts a server of its own even when <see cref="EnvironmentVariable"/> is set (for tests that stop it).</summary>
    public async Task StartOwnServerAsync()
    {
        IsExternal = false;
        _binDirectory = PostgresBinaries.FindBinDirectory($", or set {EnvironmentVariable} to the connection string of a running server");
        _runAsSystemUser = Environment.IsPrivilegedProcess;
        _directory = Path.Combine(Path.GetTempPath(), "clustersession-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_directory);
        if (_runAsSystemUser)
        {
            await RunAsync("chown", [$"{SystemUser}:", _directory], asSystemUser: false);
        }

        await RunAsync(Path.Combine(_binDirectory, "initdb"),
            ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            asSystemUser: _runAsSystemUser);
        Port = ServerProcess.FreePort();
        ConnectionString = string.Create(CultureInfo.InvariantCulture,
            $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Timeout=5;Command Timeout=10");
        await StartAsync();
    }

    /// <summary>(Re)starts the server on the same port and waits until it accepts connections.</summary>
    public Task StartAsync()
    {
        ThrowIfExternal();
        var serverOptions = string.Create(CultureInfo.InvariantCulture,
            $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300");
        return RunAsync(Path.Combine(_binDirectory!, "pg_ctl"),
            ["-D", DataDirectory, "-l", LogFile, "-o", serverOptions, "-w", "-t", "60", "start"],
            asSystemUser: _runAsSystemUser);
    }

    /// <summary>Stops the server (fast shutdown: open connections are cut) and waits until it is down.</summary>
    public Task StopAsync()
    {
        ThrowIfExternal();
        return RunAsync(Path.Combine(_binDirectory!, "pg_ctl"), ["-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "stop"], asSystemUser: _runAsSystemUser);
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (IsExternal || _directory is null)
        {
            return;
        }

        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await RunAsync(Path.Combine(_binDirectory!, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "stop"], asSystemUser: _runAsSystemUser);
            }
        }
        finally
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private void ThrowIfExternal()
    {
        if (IsExternal || _directory is null)
        {
            throw new InvalidOperationException(
                $"This PostgreSQL server was not started by the fixture ({EnvironmentVariable} is set): call StartOwnServerAsync for tests that stop and start it.");
        }
    }

    private async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asSystemUser)
    {
        string[] command = asSystemUser ? ["-u", SystemUser, "--", file, .. arguments] : [.. arguments];
        try
        {
            await ServerProcess.RunAsync(asSystemUser ? "runuser" : file, command);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException(ex.Message + ServerLog(), ex);
        }
    }

    private string ServerLog()
        => _directory is not null && File.Exists(LogFile) ? "\nServer log:\n" + File.ReadAllText(LogFile) : "";
}
