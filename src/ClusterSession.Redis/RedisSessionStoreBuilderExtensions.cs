using ClusterSession;
using ClusterSession.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

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
        => builder.UseStore<TBuilder, RedisSessionStoreOptions>(configure, Create);

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
    /// <summary>
    /// Keeps sessions in Redis with <see cref="RedisSessionStoreOptions"/> bound from <paramref name="section"/> (such as
    /// <c>ClusterSession:Store:Redis</c>: <c>Configuration</c>, <c>KeyPrefix</c>, <c>OperationTimeout</c>,
    /// <c>NearCache:Enabled</c>...), read once at start-up and validated with the same messages as in code.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="section">The Redis store's configuration section.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseRedis<TBuilder>(this TBuilder builder, IConfiguration section)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, RedisSessionStoreOptions>(section, Create);

    /// <summary>
    /// Keeps sessions in Redis through a multiplexer the application registered in its services, such as the one
    /// Aspire's <c>builder.AddRedisClient("cache")</c> registers: <c>o.UseRedis(sp =&gt; sp.GetRequiredService&lt;IConnectionMultiplexer&gt;())</c>.
    /// The store uses it and never disposes it (its owner, the service provider, does);
    /// <see cref="RedisSessionStoreOptions.Configuration"/> is ignored.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="multiplexer">Gets the application's multiplexer from the service provider (once, when the store is created).</param>
    /// <param name="configure">Sets the other options of the Redis store (key prefix, timeouts, near cache), or null.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseRedis<TBuilder>(this TBuilder builder, Func<IServiceProvider, IConnectionMultiplexer> multiplexer, Action<RedisSessionStoreOptions>? configure = null)
        where TBuilder : ISessionStoreBuilder
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        return builder.UseStore(configure ?? (static _ => { }), CreateWith(multiplexer));
    }

    /// <summary>
    /// Lets configuration choose the Redis store by name: with <c>"Store": { "Kind": "Redis", "Redis": { ... } }</c> in
    /// the section given to <c>AddClusterSession(IConfiguration)</c>, the store's options are bound from <c>Store:Redis</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="multiplexer">
    /// Gets the multiplexer from the service provider (as <see cref="UseRedis{TBuilder}(TBuilder, Func{IServiceProvider, IConnectionMultiplexer}, Action{RedisSessionStoreOptions}?)"/>),
    /// or null (the default) for a multiplexer the store creates from <c>Store:Redis:Configuration</c> and owns.
    /// </param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddRedisSessionStoreKind(this IServiceCollection services, Func<IServiceProvider, IConnectionMultiplexer>? multiplexer = null)
        => services.AddSessionStoreKind<RedisSessionStoreOptions>("Redis", multiplexer is null ? Create : CreateWith(multiplexer));

    private static ISessionStore Create(IServiceProvider provider, RedisSessionStoreOptions options) => RedisSessionStore.Create(provider, options);

    private static Func<IServiceProvider, RedisSessionStoreOptions, ISessionStore> CreateWith(Func<IServiceProvider, IConnectionMultiplexer> multiplexer)
        => (provider, options) => RedisSessionStore.Create(
            provider,
            options,
            multiplexer(provider) ?? throw new InvalidOperationException("The multiplexer given to UseRedis(...) returned null: register an IConnectionMultiplexer (e.g. builder.AddRedisClient(\"cache\")) or use UseRedis(\"host:port\")."));
}
