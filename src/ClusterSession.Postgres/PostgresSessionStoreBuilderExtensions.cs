using ClusterSession;
using ClusterSession.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

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
        => builder.UseStore<TBuilder, PostgresSessionStoreOptions>(configure, Create);

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
    /// <summary>
    /// Keeps sessions in PostgreSQL with <see cref="PostgresSessionStoreOptions"/> bound from <paramref name="section"/>
    /// (such as <c>ClusterSession:Store:Postgres</c>: <c>ConnectionString</c>, <c>Schema</c>, <c>TablePrefix</c>,
    /// <c>CreateSchemaOnStartup</c>...), read once at start-up and validated with the same messages as in code.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="section">The PostgreSQL store's configuration section.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UsePostgres<TBuilder>(this TBuilder builder, IConfiguration section)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, PostgresSessionStoreOptions>(section, Create);

    /// <summary>
    /// Keeps sessions in PostgreSQL through a data source the application registered in its services, such as the one
    /// Aspire's <c>builder.AddNpgsqlDataSource("db")</c> registers: <c>o.UsePostgres(sp =&gt; sp.GetRequiredService&lt;NpgsqlDataSource&gt;())</c>.
    /// The store uses it as <see cref="PostgresSessionStoreOptions.DataSource"/> and never disposes it (its owner, the
    /// service provider, does); leave <see cref="PostgresSessionStoreOptions.ConnectionString"/> unset.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="dataSource">Gets the application's data source from the service provider (once, when the store is created).</param>
    /// <param name="configure">Sets the other options of the PostgreSQL store (schema, table prefix, cleanup), or null.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UsePostgres<TBuilder>(this TBuilder builder, Func<IServiceProvider, NpgsqlDataSource> dataSource, Action<PostgresSessionStoreOptions>? configure = null)
        where TBuilder : ISessionStoreBuilder
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        return builder.UseStore(configure ?? (static _ => { }), CreateWith(dataSource));
    }

    /// <summary>
    /// Lets configuration choose the PostgreSQL store by name: with <c>"Store": { "Kind": "Postgres", "Postgres": { ... } }</c>
    /// in the section given to <c>AddClusterSession(IConfiguration)</c>, the store's options are bound from <c>Store:Postgres</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="dataSource">
    /// Gets the data source from the service provider (as <see cref="UsePostgres{TBuilder}(TBuilder, Func{IServiceProvider, NpgsqlDataSource}, Action{PostgresSessionStoreOptions}?)"/>),
    /// or null (the default) for a data source the store builds from <c>Store:Postgres:ConnectionString</c> and owns.
    /// </param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddPostgresSessionStoreKind(this IServiceCollection services, Func<IServiceProvider, NpgsqlDataSource>? dataSource = null)
        => services.AddSessionStoreKind<PostgresSessionStoreOptions>("Postgres", dataSource is null ? Create : CreateWith(dataSource));

    private static ISessionStore Create(IServiceProvider provider, PostgresSessionStoreOptions options) => PostgresSessionStore.Create(provider, options);

    private static Func<IServiceProvider, PostgresSessionStoreOptions, ISessionStore> CreateWith(Func<IServiceProvider, NpgsqlDataSource> dataSource)
        => (provider, options) =>
        {
            options.DataSource = dataSource(provider) ?? throw new InvalidOperationException("The data source given to UsePostgres(...) returned null: register an NpgsqlDataSource (e.g. builder.AddNpgsqlDataSource(\"db\")) or use UsePostgres(\"Host=...\").");
            return PostgresSessionStore.Create(provider, options);
        };
}
