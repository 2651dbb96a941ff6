using ClusterSession.InMemory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore;

/// <summary>Store builders for <see cref="ClusterSessionOptions"/>.</summary>
public static class ClusterSessionOptionsStoreExtensions
{
    /// <summary>
    /// Keeps sessions in this process's memory: for development, tests and single-server apps. Sessions are not
    /// shared between servers and are lost on restart; for a cluster use <c>UseRedis(...)</c> (package
    /// ClusterSession.Redis) or <c>UsePostgres(...)</c> (package ClusterSession.Postgres). The store's limits
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
}
