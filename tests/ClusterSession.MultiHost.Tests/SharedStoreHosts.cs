using ClusterSession.Testing.Servers;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

/// <summary>Two hosts of the same app, configured alike, sharing one store; nothing configured about Data Protection.</summary>
public interface ISharedStoreHosts
{
    AppHost A { get; }

    AppHost B { get; }

    /// <summary>How many Data Protection key-ring elements the store holds.</summary>
    Task<long> KeyRingElementsAsync();
}

/// <summary>A real redis-server and two hosts of the app over it.</summary>
public sealed class RedisHostsFixture : ISharedStoreHosts, IAsyncLifetime
{
    private readonly RedisServerFixture _redis = new();
    private readonly string _prefix = "mh" + Guid.NewGuid().ToString("N")[..8] + ":";
    private AppHost[] _hosts = [];

    public AppHost A => _hosts[0];

    public AppHost B => _hosts[1];

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        _hosts = await AppHost.StartManyAsync(2, _ => ["--Store", "redis", "--Redis", _redis.Configuration, "--Prefix", _prefix]);
    }

    public async Task<long> KeyRingElementsAsync()
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.Configuration);
        return await connection.GetDatabase().ListLengthAsync(_prefix + "dataprotection-keys");
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }
}

/// <summary>A real PostgreSQL server and two hosts of the app over it (the schema, key ring table included, created at startup).</summary>
public sealed class PostgresHostsFixture : ISharedStoreHosts, IAsyncLifetime
{
    private readonly PostgresServerFixture _postgres = new();
    private readonly string _prefix = "mh" + Guid.NewGuid().ToString("N")[..8] + "_";
    private AppHost[] _hosts = [];

    public AppHost A => _hosts[0];

    public AppHost B => _hosts[1];

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _hosts = await AppHost.StartManyAsync(2, _ => ["--Store", "postgres", "--Postgres", _postgres.ConnectionString, "--Prefix", _prefix]);
    }

    public async Task<long> KeyRingElementsAsync()
    {
        await using var dataSource = NpgsqlDataSource.Create(_postgres.ConnectionString);
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM \"public\".\"{_prefix}key_ring\"");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await _postgres.DisposeAsync();
    }
}
