using ClusterSession;
using ClusterSession.Postgres;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary><c>UsePostgres(...)</c> for a host integration's store builder, e.g. <c>services.AddClusterSession(o => o.UsePostgres(...))</c>.</summary>
public static class PostgresSessionStoreBuilderExtensions
{
    /// <summary>
    /// Keeps sessions in PostgreSQL, shared by every server of the application. The store's limits default to
    /// the builder's <see cref="ISessionStoreBuilder.Limits"/>. Create the tables with
    /// <see cref="PostgresSessionStoreOptions.CreateSchemaOnStartup"/> or by running the store's schema.sql.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="configure">Sets the PostgreSQL store's options, at least <see cref="PostgresSessionStoreOptions.ConnectionString"/> or <see cref="PostgresSessionStoreOptions.DataSource"/>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UsePostgres<TBuilder>(this TBuilder builder, Action<PostgresSessionStoreOptions> configure)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, PostgresSessionStoreOptions>(
            configure,
            static (provider, options) => new PostgresSessionStore(options, provider.GetService<TimeProvider>() ?? TimeProvider.System, provider.GetService<ILogger<PostgresSessionStore>>()));

    /// <summary>Keeps sessions in PostgreSQL at <paramref name="connectionString"/> (an Npgsql connection string).</summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UsePostgres<TBuilder>(this TBuilder builder, string connectionString)
        where TBuilder : ISessionStoreBuilder
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgres(postgres => postgres.ConnectionString = connectionString);
    }
}
