using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;

namespace ClusterSession.Cli.Tests;

/// <summary>The commands on a real redis-server, each test under its own key prefix.</summary>
public sealed class RedisCliTests(RedisServerFixture redis) : CliCommandTests, IClassFixture<RedisServerFixture>
{
    private readonly string _prefix = "cli-" + Guid.NewGuid().ToString("N")[..8] + ":";

    protected override string[] StoreArguments => ["--redis", redis.Configuration, "--key-prefix", _prefix];

    protected override string[] UnreachableStoreArguments => ["--redis", $"127.0.0.1:{ClosedPort()},connectTimeout=1000"];

    [Fact]
    public async Task The_built_tool_runs_as_a_process_and_prints_json()
    {
        // The tool's own build output (the copy beside the tests resolves assemblies through the test's framework choices).
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var root = testBin;
        while (!File.Exists(Path.Combine(root.FullName, "ClusterSession.slnx")))
        {
            root = root.Parent ?? throw new InvalidOperationException("ClusterSession.slnx not found above " + testBin.FullName);
        }

        var dll = Path.Combine(root.FullName, "tools/ClusterSession.Cli/bin", testBin.Parent!.Name, testBin.Name, "ClusterSession.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["exec", dll, "count", "--json", .. StoreArguments])
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(deadline.Token);

        Assert.True(process.ExitCode == 0, await error);
        Assert.Equal("{\"count\":3}", (await output).Trim());
    }

    protected override Task<ISessionStore> CreateStoreAsync()
        => Task.FromResult<ISessionStore>(new RedisSessionStore(new RedisSessionStoreOptions { Configuration = redis.Configuration, KeyPrefix = _prefix }));

    [Fact]
    public async Task Upgrade_moves_the_previous_layout_then_has_nothing_to_do_and_count_sees_both_layouts()
    {
        // What the previous release (v0.2.0-preview.1) wrote: a session under its id, an index under the user's name.
        var prefix = "cli-up-" + Guid.NewGuid().ToString("N")[..8] + ":";
        await using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var db = connection.GetDatabase();
        var id = SessionId.Create();
        var created = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        await db.HashSetAsync(prefix + "s:{" + id + "}", [new("#", created + ",0,1200000,28800000,0,erin"), new("@cart", "1")]);
        await db.KeyExpireAsync(prefix + "s:{" + id + "}", TimeSpan.FromMinutes(10));
        await db.SortedSetAddAsync(prefix + "p:erin", id, created + 28_800_000);
        string[] store = ["--redis", redis.Configuration, "--key-prefix", prefix];

        var (countCode, count) = await RunToolAsync(["count", "--json", .. store]);
        var (upgradeCode, upgrade) = await RunToolAsync(["upgrade", "--json", .. store]);
        var (againCode, again) = await RunToolAsync(["upgrade", .. store]);
        var (listCode, list) = await RunToolAsync(["count", "--user", "erin", .. store]);

        Assert.Equal((0, "{\"count\":1}"), (countCode, count.Trim()));
        Assert.Equal(0, upgradeCode);
        Assert.StartsWith("{\"status\":\"upgraded\",", upgrade.Trim(), StringComparison.Ordinal);
        Assert.EndsWith("\"sessionsMoved\":1}", upgrade.Trim(), StringComparison.Ordinal);
        Assert.Equal(0, againCode);
        Assert.Contains("nothing to upgrade", again, StringComparison.Ordinal);
        Assert.Equal((0, "1"), (listCode, list.Trim()));
        Assert.False(await db.KeyExistsAsync(prefix + "s:{" + id + "}"));
        Assert.False(await db.KeyExistsAsync(prefix + "p:erin"));
    }

    [Fact]
    public async Task Upgrade_refused_exits_with_2_and_says_why()
    {
        var prefix = "cli-up-" + Guid.NewGuid().ToString("N")[..8] + ":";
        await using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var db = connection.GetDatabase();
        var old = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        await db.HashSetAsync(prefix + "s:{" + SessionId.Create() + "}", [new("#", old + ",0,1200000,28800000,0")]);
        string[] store = ["--redis", redis.Configuration, "--key-prefix", prefix];
        Assert.Equal(0, (await RunToolAsync(["count", .. store])).Code); // a current node registered (layout 2)

        // The previous release creates a session now (dated to the millisecond; current nodes round to the second).
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 2_000;
        await db.HashSetAsync(prefix + "s:{" + SessionId.Create() + "}", [new("#", (now % 1000 == 0 ? now + 1 : now) + ",0,1200000,28800000,0")]);
        var (code, output) = await RunToolAsync(["upgrade", .. store]);

        Assert.Equal(ExitCodes.Refused, code);
        Assert.StartsWith("Refused: 1 session(s)", output.Trim(), StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output)> RunToolAsync(string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, CancellationToken.None);
        return (code, output + error.ToString());
    }

    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>The commands on a real PostgreSQL server, each test on its own tables.</summary>
public sealed class PostgresCliTests(PostgresServerFixture postgres) : CliCommandTests, IClassFixture<PostgresServerFixture>
{
    private readonly string _tablePrefix = "cli_" + Guid.NewGuid().ToString("N")[..8] + "_";

    protected override string[] StoreArguments => ["--postgres", postgres.ConnectionString, "--table-prefix", _tablePrefix];

    protected override string[] UnreachableStoreArguments => ["--postgres", $"Host=127.0.0.1;Port={RedisCliTests.ClosedPort()};Username=x;Password=x;Timeout=2"];

    protected override async Task<ISessionStore> CreateStoreAsync()
    {
        var store = new PostgresSessionStore(new PostgresSessionStoreOptions { ConnectionString = postgres.ConnectionString, TablePrefix = _tablePrefix });
        await store.CreateSchemaAsync();
        return store;
    }
}

/// <summary>What the command line itself refuses, before any store is opened.</summary>
public sealed class UsageTests
{
    [Theory]
    [InlineData]
    [InlineData("count")]
    [InlineData("count", "--redis", "127.0.0.1:1", "--postgres", "Host=127.0.0.1")]
    [InlineData("count", "--redis", "127.0.0.1:1", "--table-prefix", "x")]
    [InlineData("count", "--bogus", "--redis", "127.0.0.1:1")]
    [InlineData("stats", "--sample", "0", "--redis", "127.0.0.1:1")]
    [InlineData("frobnicate", "--redis", "127.0.0.1:1")]
    [InlineData("list", "--redis", "127.0.0.1:1")]
    [InlineData("revoke-user", "--redis", "127.0.0.1:1")]
    public async Task A_wrong_command_line_exits_with_2_and_says_why(params string[] args)
    {
        var error = new StringWriter();
        Assert.Equal(ExitCodes.Usage, await CliApp.RunAsync(args, new StringWriter(), error, CancellationToken.None));
        Assert.StartsWith("clustersession: ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_prints_the_commands_and_exit_codes()
    {
        var output = new StringWriter();
        Assert.Equal(ExitCodes.Ok, await CliApp.RunAsync(["--help"], output, new StringWriter(), CancellationToken.None));
        Assert.Contains("revoke-user U", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("3 store unavailable", output.ToString(), StringComparison.Ordinal);
    }
}
