using ClusterSession;
using ClusterSession.Redis;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary><c>UseRedis(...)</c> for a host integration's store builder, e.g. <c>services.AddClusterSession(o => o.UseRedis(...))</c>.</summary>
public static class RedisSessionStoreBuilderExtensions
{
    /// <summary>
    /// Keeps sessions in Redis, Redis Cluster or Garnet, shared by every server of the application. The store's
    /// limits default to the builder's <see cref="ISessionStoreBuilder.Limits"/>.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="configure">Sets the Redis store's options, at least <see cref="RedisSessionStoreOptions.Configuration"/>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseRedis<TBuilder>(this TBuilder builder, Action<RedisSessionStoreOptions> configure)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, RedisSessionStoreOptions>(
            configure,
            static (provider, options) => new RedisSessionStore(options, provider.GetService<TimeProvider>() ?? TimeProvider.System, provider.GetService<ILogger<RedisSessionStore>>()));

    /// <summary>Keeps sessions in Redis at <paramref name="configuration"/> (a StackExchange.Redis configuration string such as <c>"127.0.0.1:6379"</c>).</summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="configuration">The Redis configuration string.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseRedis<TBuilder>(this TBuilder builder, string configuration)
        where TBuilder : ISessionStoreBuilder
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        return builder.UseRedis(redis => redis.Configuration = configuration);
    }
}
