using ClusterSession;
using ClusterSession.Redis;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="RedisSessionStore"/> as the application's <see cref="ISessionStore"/>.</summary>
public static class RedisSessionStoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="RedisSessionStore"/> as <see cref="ISessionStore"/> (replacing any
    /// store registered before), with options validated at startup. The clock is the registered
    /// <see cref="TimeProvider"/> (<see cref="TimeProvider.System"/> unless the application registers another).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options, at least <see cref="RedisSessionStoreOptions.Configuration"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddRedisSessionStore(this IServiceCollection services, Action<RedisSessionStoreOptions> configure)
        => services.AddSessionStore<RedisSessionStore, RedisSessionStoreOptions>(
            configure,
            static (provider, options) => new RedisSessionStore(options, provider.GetService<TimeProvider>(), provider.GetService<ILogger<RedisSessionStore>>()));
}
