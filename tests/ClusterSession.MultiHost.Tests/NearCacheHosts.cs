using System.Globalization;
using System.Net.Http.Json;
using ClusterSession.Testing.Servers;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Three hosts of the app (three OS processes), the store's near cache on in each, over one shared store;
/// and the means to cut the hosts' invalidation connections on the store's side, as a network blip or a
/// server-side timeout would.
/// </summary>
public abstract class NearCacheHosts : IAsyncLifetime
{
    private static readonly HttpClient Diagnostics = new() { Timeout = TimeSpan.FromSeconds(10) };
    private AppHost[] _hosts = [];

    public IReadOnlyList<AppHost> Hosts => _hosts;

    /// <summary>The store's name in the measured output.</summary>
    public abstract string StoreName { get; }

    /// <summary>Whether the hosts run with the near cache on (the fixtures without it measure what it costs).</summary>
    public virtual bool NearCache => true;

    /// <summary>What <see cref="KillInvalidationConnectionsAsync"/> does, for the measured output.</summary>
    public abstract string KillCommand { get; }

    public async Task InitializeAsync()
    {
        await StartStoreAsync();
        _hosts = await AppHost.StartManyAsync(3, _ => [.. StoreArguments(), "--NearCache", NearCache ? "true" : "false"]);
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await StopStoreAsync();
    }

    /// <summary>Closes, on the store's side, every connection the hosts receive invalidations on; returns how many it closed.</summary>
    public abstract Task<long> KillInvalidationConnectionsAsync();

    /// <summary>The host's near-cache counters (GET /near-cache: hits, misses, invalidations, flushes since it started).</summary>
    public static async Task<NearCacheCounters> CountersAsync(AppHost host, CancellationToken cancellationToken = default)
    {
        var counters = await Diagnostics.GetFromJsonAsync<Dictionary<string, long>>(new Uri(host.Address, "/near-cache"), cancellationToken)
            ?? throw new InvalidOperationException("GET /near-cache answered null.");
        return new NearCacheCounters(counters["hits"], counters["misses"], counters["invalidations"], counters["flushes"]);
    }

    protected abstract Task StartStoreAsync();

    protected abstract Task StopStoreAsync();

    protected abstract string[] StoreArguments();
}

/// <summary>One host's near-cache counters at one moment.</summary>
public sealed record NearCacheCounters(long Hits, long Misses, long Invalidations, long Flushes)
{
    public static NearCacheCounters Zero { get; } = new(0, 0, 0, 0);

    public static NearCacheCounters operator +(NearCacheCounters a, NearCacheCounters b)
        => new(a.Hits + b.Hits, a.Misses + b.Misses, a.Invalidations + b.Invalidations, a.Flushes + b.Flushes);

    public static NearCacheCounters operator -(NearCacheCounters a, NearCacheCounters b)
        => new(a.Hits - b.Hits, a.Misses - b.Misses, a.Invalidations - b.Invalidations, a.Flushes - b.Flushes);

    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"hits {Hits}, misses {Misses}, invalidations {Invalidations}, flushes {Flushes}");
}

/// <summary>A real redis-server and three near-cached hosts over it.</summary>
public class RedisNearCacheHosts : NearCacheHosts
{
    private readonly RedisServerFixture _redis = new();
    private readonly string _prefix = "nc" + Guid.NewGuid().ToString("N")[..8] + ":";

    public override string StoreName => "redis-server";

    public override string KillCommand => "CLIENT KILL TYPE pubsub";

    public override async Task<long> KillInvalidationConnectionsAsync()
    {
        // Every pub/sub connection of the server: the hosts' invalidation subscriptions (and this one's own, if any).
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.Configuration + ",allowAdmin=true");
        var server = connection.GetServers().Single();
        return (long)await server.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
    }

    protected override Task StartStoreAsync() => _redis.InitializeAsync();

    protected override Task StopStoreAsync() => _redis.DisposeAsync();

    protected override string[] StoreArguments() => ["--Store", "redis", "--Redis", _redis.Configuration, "--Prefix", _prefix];
}

/// <summary>A real Redis Cluster (three masters) and three near-cached hosts over it.</summary>
public sealed class RedisClusterNearCacheHosts : NearCacheHosts
{
    private readonly RedisClusterFixture _cluster = new();
    private readonly string _prefix = "nc" + Guid.NewGuid().ToString("N")[..8] + ":";

    public override string StoreName => "Redis Cluster";

    public override string KillCommand => "CLIENT KILL TYPE pubsub on every node";

    public override async Task<long> KillInvalidationConnectionsAsync()
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_cluster.Configuration + ",allowAdmin=true");
        long closed = 0;
        foreach (var server in connection.GetServers())
        {
            closed += (long)await server.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        }

        return closed;
    }

    protected override Task StartStoreAsync() => _cluster.InitializeAsync();

    protected override Task StopStoreAsync() => _cluster.DisposeAsync();

    protected override string[] StoreArguments() => ["--Store", "redis", "--Redis", _cluster.Configuration, "--Prefix", _prefix];
}

/// <summary>A real PostgreSQL server and three near-cached hosts over it.</summary>
public class PostgresNearCacheHosts : NearCacheHosts
{
    private readonly PostgresServerFixture _postgres = new();
    private readonly string _prefix = "nc" + Guid.NewGuid().ToString("N")[..8] + "_";

    public override string StoreName => "PostgreSQL";

    public override string KillCommand => "pg_terminate_backend of the listener backends";

    public override async Task<long> KillInvalidationConnectionsAsync()
    {
        // Each store names its listener connection "ClusterSession listener <nonce>" (application_name).
        await using var dataSource = NpgsqlDataSource.Create(_postgres.ConnectionString);
        await using var command = dataSource.CreateCommand(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity " +
            "WHERE pid <> pg_backend_pid() AND application_name LIKE 'ClusterSession listener %'");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    protected override Task StartStoreAsync() => _postgres.InitializeAsync();

    protected override Task StopStoreAsync() => _postgres.DisposeAsync();

    protected override string[] StoreArguments() => ["--Store", "postgres", "--Postgres", _postgres.ConnectionString, "--Prefix", _prefix];
}

/// <summary>The same three hosts over a redis-server, with the near cache off.</summary>
public sealed class RedisHostsWithoutNearCache : RedisNearCacheHosts
{
    public override bool NearCache => false;
}

/// <summary>The same three hosts over PostgreSQL, with the near cache off.</summary>
public sealed class PostgresHostsWithoutNearCache : PostgresNearCacheHosts
{
    public override bool NearCache => false;
}
