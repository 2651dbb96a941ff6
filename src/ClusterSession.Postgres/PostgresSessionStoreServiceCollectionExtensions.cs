using ClusterSession;
using ClusterSession.Postgres;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="PostgresSessionStore"/> as the application's <see cref="ISessionStore"/>.</summary>
public static class PostgresSessionStoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the PostgreSQL session store as a singleton <see cref="ISessionStore"/> (replacing any
    /// store registered before), with options validated at startup. The clock is the registered
    /// <see cref="TimeProvider"/> (<see cref="TimeProvider.System"/> when none is).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options; at least <see cref="PostgresSessionStoreOptions.ConnectionString"/> or <see cref="PostgresSessionStoreOptions.DataSource"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddPostgresSessionStore(this IServiceCollection services, Action<PostgresSessionStoreOptions> configure)
        => services.AddSessionStore<PostgresSessionStore, PostgresSessionStoreOptions>(
            configure,
            static (provider, options) => new PostgresSessionStore(options, provider.GetRequiredService<TimeProvider>(), provider.GetService<ILogger<PostgresSessionStore>>()));

    /// <summary>Registers the PostgreSQL session store with a connection string; see <see cref="AddPostgresSessionStore(IServiceCollection, Action{PostgresSessionStoreOptions})"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <param name="configure">Sets further options, or null.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddPostgresSessionStore(this IServiceCollection services, string connectionString, Action<PostgresSessionStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return services.AddPostgresSessionStore(options =>
        {
            options.ConnectionString = connectionString;
            configure?.Invoke(options);
        });
    }
}
