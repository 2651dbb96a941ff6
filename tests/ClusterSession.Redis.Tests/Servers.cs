using System.Collections.Concurrent;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

[CollectionDefinition(Name)]
public sealed class StandaloneRedis : ICollectionFixture<RedisServerFixture>
{
    public const string Name = "standalone redis";
}

[CollectionDefinition(Name)]
public sealed class ClusterRedis : ICollectionFixture<RedisClusterFixture>
{
    public const string Name = "redis cluster";
}

[CollectionDefinition(Name)]
public sealed class SentinelRedis : ICollectionFixture<RedisSentinelFixture>
{
    public const string Name = "redis sentinel";
}

[CollectionDefinition(Name)]
public sealed class Garnet : ICollectionFixture<GarnetServerFixture>
{
    public const string Name = "garnet";
}

/// <summary>One multiplexer per server for the whole test run, and stores isolated by a unique key prefix.</summary>
internal static class TestStores
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<ConnectionMultiplexer>>> Multiplexers = new();

    public static Task<ConnectionMultiplexer> MultiplexerAsync(string configuration)
        => Multiplexers.GetOrAdd(configuration, c => new Lazy<Task<ConnectionMultiplexer>>(() => ConnectionMultiplexer.ConnectAsync(c + ",allowAdmin=true"))).Value;

    public static string UniquePrefix() => "t" + Guid.NewGuid().ToString("N")[..12] + ":";

    public static async Task<RedisSessionStore> CreateAsync(string configuration, TimeProvider time, string? prefix = null, Action<RedisSessionStoreOptions>? configure = null)
    {
        var options = new RedisSessionStoreOptions { KeyPrefix = prefix ?? UniquePrefix() };
        configure?.Invoke(options);
        return new RedisSessionStore(await MultiplexerAsync(configuration), options, time);
    }

    /// <summary>A store that owns its connection (it connects on first use, so creating it checks only the options).</summary>
    public static RedisSessionStore CreateWithOptions(string configuration, Action<SessionStoreOptions> configure)
    {
        var options = new RedisSessionStoreOptions { Configuration = configuration, KeyPrefix = UniquePrefix() };
        configure(options);
        return new RedisSessionStore(options);
    }

    public static FakeTimeProvider NewClock() => new(DateTimeOffset.UtcNow);
}
