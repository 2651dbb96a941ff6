using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.Bench.Contenders;

/// <summary>
/// One way of doing sessions, served as its own ASP.NET Core app. A contender registers its
/// services and maps /read, /write, /seed, /seed-signedin, /signedin and /count with its own session API, in its most
/// natural (and fastest correct) way; the host adds /nosession and Kestrel.
/// To add one, implement this (or use a <see cref="ClusterSessionContender"/> factory) and list it in <see cref="ContenderCatalog"/>.
/// </summary>
internal interface IContender
{
    /// <summary>The name in the report, e.g. <c>aspnetcore-session-redis</c>.</summary>
    string Name { get; }

    /// <summary>Whether it keeps sessions in the benchmark's Redis (else Redis figures are null).</summary>
    bool UsesRedis { get; }

    /// <summary>The tables it keeps sessions in, in the benchmark's PostgreSQL (empty: PostgreSQL figures are null).</summary>
    IReadOnlyList<string> PostgresTables { get; }

    /// <param name="services">The app's services.</param>
    /// <param name="stores">Where the stores are, each reached through its latency proxy.</param>
    void ConfigureServices(IServiceCollection services, StoreEndpoints stores);

    /// <summary>Adds the session middleware and maps /read, /write, /seed, /seed-signedin, /signedin, /count.</summary>
    void Configure(WebApplication app);
}

/// <summary>How the apps reach the stores (through the latency proxies).</summary>
/// <param name="RedisConfiguration">A StackExchange.Redis configuration string.</param>
/// <param name="PostgresConnectionString">An Npgsql connection string, or null when no PostgreSQL contender runs.</param>
internal sealed record StoreEndpoints(string RedisConfiguration, string? PostgresConnectionString);

/// <summary>Every contender, in report order; the first is the baseline of the ratios.</summary>
internal static class ContenderCatalog
{
    public const string BaselineName = AspNetCoreSessionContender.ContenderName;

    public static IReadOnlyList<IContender> All { get; } =
    [
        new AspNetCoreSessionContender(),
        ClusterSessionContender.Redis("clustersession-redis"),
        ClusterSessionContender.Memory,
        ClusterSessionContender.Postgres("clustersession-postgres", unlogged: false),
        ClusterSessionContender.Postgres("clustersession-postgres-unlogged", unlogged: true),

        // A store option variant is one line. A name ending in "-near" has the near cache on (docs/near-cache.md);
        // the report prints issue 15's near-cache targets for it beside the same contender without it.
        ClusterSessionContender.Redis("clustersession-redis-near", static redis => redis.NearCache.Enabled = true),
        ClusterSessionContender.Postgres("clustersession-postgres-near", unlogged: false, static postgres => postgres.NearCache.Enabled = true),

        // Values encrypted at rest with Data Protection (ClusterSessionOptions.EncryptValues), beside clustersession-redis.
        ClusterSessionContender.Redis("clustersession-redis-encrypted", encryptValues: true),
    ];
}
