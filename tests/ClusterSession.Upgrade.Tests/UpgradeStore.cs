using System.Text;
using ClusterSession.Testing.Servers;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.Upgrade.Tests;

/// <summary>A piece of what a store holds (a key, a field, a value, a row), and where it is.</summary>
public sealed record StoredBytes(string Location, byte[] Bytes);

/// <summary>
/// The one real server both releases share, as the demo and the CLI are pointed at it, and everything it holds.
/// The demo fixes its own key prefix (<c>clusterdemo:</c>) and table prefix (<c>clusterdemo_</c>); the CLI is told the same.
/// </summary>
public abstract class UpgradeStore : IAsyncDisposable
{
    public abstract Task StartAsync();

    /// <summary>The store options of ClusterDemo's command line.</summary>
    public abstract IReadOnlyList<string> DemoArguments { get; }

    /// <summary>The store options of <c>clustersession</c>'s command line, for the store the demo uses.</summary>
    public abstract IReadOnlyList<string> CliArguments { get; }

    /// <summary>Everything in the store: every key and value (Redis), every row of every table (PostgreSQL).</summary>
    public abstract Task<IReadOnlyList<StoredBytes>> DumpAsync();

    public abstract ValueTask DisposeAsync();
}

/// <summary>One redis-server of the test's own (it is dumped whole, so it cannot be a shared CLUSTERSESSION_REDIS).</summary>
public sealed class RedisUpgradeStore : UpgradeStore
{
    private readonly RedisServerFixture _server = new();

    public override async Task StartAsync()
    {
        await _server.InitializeAsync();
        if (!_server.OwnsProcess)
        {
            throw new InvalidOperationException("The upgrade test dumps every key of its redis-server: it needs a server of its own; unset CLUSTERSESSION_REDIS.");
        }
    }

    public override IReadOnlyList<string> DemoArguments => ["--store", "redis", "--redis", _server.Configuration];

    public override IReadOnlyList<string> CliArguments => ["--redis", _server.Configuration, "--key-prefix", "clusterdemo:"];

    /// <summary>SCAN of every key, then each key's whole value by its type.</summary>
    public override Task<IReadOnlyList<StoredBytes>> DumpAsync() => RedisDump.DumpAsync(_server.Configuration);

    public override async ValueTask DisposeAsync() => await _server.DisposeAsync();
}

/// <summary>A three-master Redis Cluster of the test's own (dumped whole, so never a shared CLUSTERSESSION_REDIS_CLUSTER).</summary>
public sealed class RedisClusterUpgradeStore : UpgradeStore
{
    private readonly RedisClusterFixture _cluster = new();

    public override async Task StartAsync()
    {
        await _cluster.InitializeAsync();
        if (_cluster.Ports.Count == 0)
        {
            throw new InvalidOperationException("The test dumps every key of its Redis Cluster: it needs a cluster of its own; unset CLUSTERSESSION_REDIS_CLUSTER.");
        }
    }

    public override IReadOnlyList<string> DemoArguments => ["--store", "redis", "--redis", _cluster.Configuration];

    public override IReadOnlyList<string> CliArguments => ["--redis", _cluster.Configuration, "--key-prefix", "clusterdemo:"];

    /// <summary>SCAN of every master, then each key's whole value by its type.</summary>
    public override Task<IReadOnlyList<StoredBytes>> DumpAsync() => RedisDump.DumpAsync(_cluster.Configuration);

    public override async ValueTask DisposeAsync() => await _cluster.DisposeAsync();
}

/// <summary>What a reader of a whole Redis (one server, or every master of a cluster) gets: every key name and every value.</summary>
public static class RedisDump
{
    /// <summary>Key names are <see cref="StoredBytes"/> whose location starts with this.</summary>
    public const string KeyLocation = "key ";

    /// <summary>SCAN of every master, then each key's whole value by its type.</summary>
    public static async Task<IReadOnlyList<StoredBytes>> DumpAsync(string configuration)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(configuration);
        var database = connection.GetDatabase();
        var items = new List<StoredBytes>();
        foreach (var server in connection.GetServers().Where(s => !s.IsReplica))
        {
            if (!server.IsConnected)
            {
                // A master left out would leave its keys out of the dump, and a test reading it would pass for nothing.
                throw new InvalidOperationException($"Cannot dump {server.EndPoint}: not connected.");
            }

            await foreach (var key in server.KeysAsync(pattern: "*", pageSize: 1000))
            {
                await AddAsync(database, key, items);
            }
        }

        return items;
    }

    private static async Task AddAsync(IDatabase database, RedisKey key, List<StoredBytes> items)
    {
        var name = key.ToString();
        items.Add(new($"{KeyLocation}{name}", (byte[])key!));
        var type = await database.KeyTypeAsync(key);
        switch (type)
        {
            case RedisType.String:
                items.Add(new($"value of {name}", (byte[])(await database.StringGetAsync(key))!));
                break;
            case RedisType.Hash:
                foreach (var entry in await database.HashGetAllAsync(key))
                {
                    items.Add(new($"field of {name}", (byte[])entry.Name!));
                    items.Add(new($"value of {name} field {entry.Name}", (byte[])entry.Value!));
                }

                break;
            case RedisType.List:
                items.AddRange((await database.ListRangeAsync(key)).Select(v => new StoredBytes($"element of {name}", (byte[])v!)));
                break;
            case RedisType.Set:
                items.AddRange((await database.SetMembersAsync(key)).Select(v => new StoredBytes($"member of {name}", (byte[])v!)));
                break;
            case RedisType.SortedSet:
                items.AddRange((await database.SortedSetRangeByRankAsync(key)).Select(v => new StoredBytes($"member of {name}", (byte[])v!)));
                break;
            case RedisType.Stream:
                foreach (var entry in await database.StreamRangeAsync(key))
                {
                    items.AddRange(entry.Values.SelectMany(v => new[] { new StoredBytes($"entry of {name}", (byte[])v.Name!), new StoredBytes($"entry of {name}", (byte[])v.Value!) }));
                }

                break;
            case RedisType.None:
                break; // expired between SCAN and the read
            default:
                throw new InvalidOperationException($"Key {name} is a {type}, which the dump does not read: add it.");
        }
    }
}

/// <summary>One PostgreSQL server of the test's own (it is dumped whole, so never a shared CLUSTERSESSION_POSTGRES).</summary>
public sealed class PostgresUpgradeStore : UpgradeStore
{
    private readonly PostgresServerFixture _server = new();

    public override Task StartAsync() => _server.StartOwnServerAsync();

    public override IReadOnlyList<string> DemoArguments => ["--store", "postgres", "--postgres", _server.ConnectionString];

    public override IReadOnlyList<string> CliArguments => ["--postgres", _server.ConnectionString, "--schema", "public", "--table-prefix", "clusterdemo_"];

    /// <summary>Every row of every table outside the system schemas, as JSON (bytea columns as hex).</summary>
    public override async Task<IReadOnlyList<StoredBytes>> DumpAsync()
    {
        await using var dataSource = NpgsqlDataSource.Create(_server.ConnectionString);
        var tables = new List<string>();
        await using (var command = dataSource.CreateCommand(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables " +
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }

        var items = new List<StoredBytes>();
        foreach (var table in tables)
        {
            await using var command = dataSource.CreateCommand($"SELECT row_to_json(t)::text FROM {table} t");
            await using var reader = await command.ExecuteReaderAsync();
            for (var row = 1; await reader.ReadAsync(); row++)
            {
                items.Add(new($"row {row} of {table}", Encoding.UTF8.GetBytes(reader.GetString(0))));
            }
        }

        return items;
    }

    /// <summary>
    /// <c>pg_dump --data-only</c> of the database, as a backup holds it: one item per line of its output (COPY rows,
    /// bytea as <c>\\x</c> hex). pg_dump is the highest version's under /usr/lib/postgresql/*/bin.
    /// </summary>
    public async Task<IReadOnlyList<StoredBytes>> PgDumpAsync()
    {
        var pgDump = Directory.GetDirectories("/usr/lib/postgresql")
            .Select(d => Path.Combine(d, "bin", "pg_dump"))
            .Where(File.Exists)
            .OrderByDescending(p => double.TryParse(Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(p))), System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0)
            .FirstOrDefault() ?? throw new InvalidOperationException("No pg_dump under /usr/lib/postgresql/*/bin: install the Debian package 'postgresql'.");
        var server = new NpgsqlConnectionStringBuilder(_server.ConnectionString);
        var output = await ServerProcess.RunAsync(pgDump,
            "--data-only", "--no-password", "-h", server.Host!, "-p", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", server.Username!, "-d", server.Database!);
        var items = new List<StoredBytes>();
        var table = "";
        foreach (var (line, i) in output.Split('\n').Select((line, i) => (line, i)))
        {
            table = line.StartsWith("COPY ", StringComparison.Ordinal) ? line.Split(' ')[1] : table;
            items.Add(new($"pg_dump line {i + 1} ({table})", Encoding.UTF8.GetBytes(line)));
        }

        return items;
    }

    public override async ValueTask DisposeAsync() => await _server.DisposeAsync();
}
