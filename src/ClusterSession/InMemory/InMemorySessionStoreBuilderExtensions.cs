using ClusterSession;
using ClusterSession.InMemory;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary><c>UseInMemory(...)</c> for a host integration's store builder, e.g. <c>services.AddClusterSession(o => o.UseInMemory())</c>.</summary>
public static class InMemorySessionStoreBuilderExtensions
{
    /// <summary>
    /// Keeps sessions in this process's memory: for development, tests and single-server apps. Sessions are not
    /// shared between servers and are lost on restart; for a cluster use <c>UseRedis(...)</c> (package
    /// ClusterSession.Redis) or <c>UsePostgres(...)</c> (package ClusterSession.Postgres).
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseInMemory<TBuilder>(this TBuilder builder)
        where TBuilder : ISessionStoreBuilder
        => builder.UseInMemory(static _ => { });

    /// <summary>
    /// Keeps sessions in this process's memory (see <see cref="UseInMemory{TBuilder}(TBuilder)"/>), with the in-memory
    /// store's options bound from <paramref name="section"/> (such as <c>ClusterSession:Store:InMemory</c>:
    /// <c>SweepInterval</c>, <c>SweepBatchSize</c>, <c>TouchIntervalFraction</c>), read once.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="section">The in-memory store's configuration section (may be empty).</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseInMemory<TBuilder>(this TBuilder builder, IConfiguration section)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, InMemorySessionStoreOptions>(section, Create);

    /// <summary>
    /// Keeps sessions in this process's memory (see <see cref="UseInMemory{TBuilder}(TBuilder)"/>), with the in-memory
    /// store's own options (touch interval, sweep). The store's limits are the builder's <see cref="ISessionStoreBuilder.Limits"/>.
    /// </summary>
    /// <param name="builder">The store builder (for ASP.NET Core: <c>ClusterSessionOptions</c>).</param>
    /// <param name="configure">Sets the in-memory store's options.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseInMemory<TBuilder>(this TBuilder builder, Action<InMemorySessionStoreOptions> configure)
        where TBuilder : ISessionStoreBuilder
        => builder.UseStore<TBuilder, InMemorySessionStoreOptions>(configure, Create);

    private static ISessionStore Create(IServiceProvider provider, InMemorySessionStoreOptions options)
        => new InMemorySessionStore(options, provider.GetService<TimeProvider>() ?? TimeProvider.System);
}
