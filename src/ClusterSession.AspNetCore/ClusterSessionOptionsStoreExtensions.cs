using ClusterSession.InMemory;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore;

/// <summary>Store builders for <see cref="ClusterSessionOptions"/>.</summary>
public static class ClusterSessionOptionsStoreExtensions
{
    /// <summary>
    /// Keeps sessions in this process's memory: for development, tests and single-server apps. Sessions are not
    /// shared between servers and are lost on restart; use <c>UseRedis(...)</c> for a cluster. The store's limits
    /// default to <see cref="ClusterSessionOptions.Limits"/>.
    /// </summary>
    /// <param name="options">The ClusterSession options.</param>
    /// <param name="configure">Adjusts the in-memory store's own options (touch interval, sweep); optional.</param>
    /// <returns>The options, for chaining.</returns>
    public static ClusterSessionOptions UseInMemory(this ClusterSessionOptions options, Action<InMemorySessionStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.UseStore(sp =>
        {
            var storeOptions = new InMemorySessionStoreOptions { Limits = options.Limits };
            configure?.Invoke(storeOptions);
            return new InMemorySessionStore(storeOptions, sp.GetRequiredService<TimeProvider>());
        });
    }

    /// <summary>
    /// Keeps sessions in Redis, Redis Cluster or Garnet, shared by every server of the application. The store's
    /// limits default to <see cref="ClusterSessionOptions.Limits"/>.
    /// </summary>
    /// <param name="options">The ClusterSession options.</param>
    /// <param name="configure">Sets the Redis store's options, at least <see cref="RedisSessionStoreOptions.Configuration"/>.</param>
    /// <returns>The options, for chaining.</returns>
    public static ClusterSessionOptions UseRedis(this ClusterSessionOptions options, Action<RedisSessionStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configure);
        return options.UseStore(sp =>
        {
            var storeOptions = new RedisSessionStoreOptions { Limits = options.Limits };
            configure(storeOptions);
            return new RedisSessionStore(storeOptions, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<RedisSessionStore>>());
        });
    }

    /// <summary>Keeps sessions in Redis at <paramref name="configuration"/> (a StackExchange.Redis configuration string such as <c>"127.0.0.1:6379"</c>).</summary>
    /// <param name="options">The ClusterSession options.</param>
    /// <param name="configuration">The Redis configuration string.</param>
    /// <returns>The options, for chaining.</returns>
    public static ClusterSessionOptions UseRedis(this ClusterSessionOptions options, string configuration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        return options.UseRedis(redis => redis.Configuration = configuration);
    }

    /// <summary>
    /// Keeps sessions in PostgreSQL, shared by every server of the application. The store's limits default to
    /// <see cref="ClusterSessionOptions.Limits"/>. Create the tables with <see cref="PostgresSessionStoreOptions.CreateSchemaOnStartup"/>
    /// or by running the store's schema.sql.
    /// </summary>
    /// <param name="options">The ClusterSession options.</param>
    /// <param name="configure">Sets the PostgreSQL store's options, at least <see cref="PostgresSessionStoreOptions.ConnectionString"/> or <see cref="PostgresSessionStoreOptions.DataSource"/>.</param>
    /// <returns>The options, for chaining.</returns>
    public static ClusterSessionOptions UsePostgres(this ClusterSessionOptions options, Action<PostgresSessionStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configure);
        return options.UseStore(sp =>
        {
            var storeOptions = new PostgresSessionStoreOptions { Limits = options.Limits };
            configure(storeOptions);
            return new PostgresSessionStore(storeOptions, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<PostgresSessionStore>>());
        });
    }

    /// <summary>Keeps sessions in PostgreSQL at <paramref name="connectionString"/> (an Npgsql connection string).</summary>
    /// <param name="options">The ClusterSession options.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The options, for chaining.</returns>
    public static ClusterSessionOptions UsePostgres(this ClusterSessionOptions options, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return options.UsePostgres(postgres => postgres.ConnectionString = connectionString);
    }
}
