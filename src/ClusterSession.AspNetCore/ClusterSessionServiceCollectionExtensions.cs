using System.Diagnostics.Metrics;
using ClusterSession;
using ClusterSession.AspNetCore;
using ClusterSession.AspNetCore.Adoption;
using ClusterSession.AspNetCore.Authentication;
using ClusterSession.AspNetCore.Configuration;
using ClusterSession.AspNetCore.Management;
using ClusterSession.AspNetCore.Protection;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers ClusterSession.</summary>
public static class ClusterSessionServiceCollectionExtensions
{
    /// <summary>
    /// Adds ClusterSession: the session store chosen in <paramref name="configure"/> (<c>UseInMemory()</c>,
    /// <c>UseRedis(...)</c>, <c>UseStore(...)</c>), <see cref="ISessionManager"/>, id renewal on sign-in,
    /// server-side cookie-authentication tickets and, with a shared store, the Data Protection key ring in that
    /// store (<see cref="ClusterSessionOptions.ShareDataProtectionKeys"/>). Pair it with <c>app.UseClusterSession()</c>; it replaces
    /// <c>services.AddSession()</c>.
    /// </summary>
    public static IServiceCollection AddClusterSession(this IServiceCollection services, Action<ClusterSessionOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);

        services.AddOptions<ClusterSessionOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterSessionOptions>, ClusterSessionOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterSessionOptions>, ValueEncryptionValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterSessionOptions>, AdoptionValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton<ISessionStore>(static sp =>
        {
            var options = sp.GetRequiredService<IOptions<ClusterSessionOptions>>().Value;
            return options.StoreFactory?.Invoke(sp) ?? throw new InvalidOperationException(
                "No session store configured: call options.UseInMemory(), options.UseRedis(...) (package ClusterSession.Redis), options.UsePostgres(...) (package ClusterSession.Postgres) or options.UseStore(...) in AddClusterSession.");
        });
        services.TryAddSingleton(static sp => new SessionRuntime(
            sp.GetRequiredService<IOptions<ClusterSessionOptions>>(),
            sp.GetRequiredService<ISessionStore>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetService<IDataProtectionProvider>,
            sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(static sp => new SessionToucher(sp.GetRequiredService<SessionRuntime>()));
        services.TryAddSingleton<ISessionManager, SessionManager>();
        services.TryAddSingleton<SessionEventHub>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SessionEventHub>(static sp => sp.GetRequiredService<SessionEventHub>()));
        services.TryAddSingleton<SessionTicketStore>();
        services.TryAddSingleton<BuiltInSessionImporter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<CookieAuthenticationOptions>, ConfigureCookieTicketStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<KeyManagementOptions>, ShareDataProtectionKeys>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<DataProtectionOptions>, ShareApplicationDiscriminator>());
        DecorateAuthenticationService(services);
        return services;
    }

    /// <summary>
    /// Adds ClusterSession (as <see cref="AddClusterSession(IServiceCollection, Action{ClusterSessionOptions})"/>) with its
    /// options bound from <paramref name="configuration"/>, such as <c>builder.Configuration.GetSection("ClusterSession")</c>:
    /// every option of <see cref="ClusterSessionOptions"/> by its name (<c>IdleTimeout</c>, <c>Cookie:Name</c>,
    /// <c>CircuitBreaker:BreakDuration</c>, <c>Limits:MaxAttributes</c>...), and the store from <c>Store</c>:
    /// <c>Store:Kind</c> names it (<c>InMemory</c>, or <c>Redis</c> / <c>Postgres</c> once their package registered the kind
    /// with <c>services.AddRedisSessionStoreKind()</c> / <c>services.AddPostgresSessionStoreKind()</c>), and the subsection of
    /// that name (<c>Store:Redis</c>) holds the store's options. Validated at start-up with the same messages as options set in
    /// code. Read once: changing the configuration later (reload) does not change a running application.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The ClusterSession section.</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddClusterSession(this IServiceCollection services, IConfiguration configuration)
        => services.AddClusterSession(configuration, static _ => { });

    /// <summary>
    /// Adds ClusterSession with its options bound from <paramref name="configuration"/> (see
    /// <see cref="AddClusterSession(IServiceCollection, IConfiguration)"/>), then set by <paramref name="configure"/>, which wins:
    /// a store chosen there (<c>o.UseRedis(...)</c>) replaces the one configuration names.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The ClusterSession section.</param>
    /// <param name="configure">Sets options after the configuration.</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddClusterSession(this IServiceCollection services, IConfiguration configuration, Action<ClusterSessionOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddSessionStoreKind("InMemory", static (builder, section) => builder.UseInMemory(section));
        return services.AddClusterSession(options =>
        {
            ConfiguredStore.Bind(configuration, options);
            configure(options);
        });
    }

    /// <summary>
    /// Wraps the authentication service whether authentication is registered before or after us: an
    /// existing registration is decorated; otherwise ours, wrapping the default, takes the place that
    /// <c>AddAuthentication()</c> would fill with <c>TryAdd</c>.
    /// </summary>
    private static void DecorateAuthenticationService(IServiceCollection services)
    {
        if (services.Any(static d => d.ServiceType == typeof(AuthenticationDecorated)))
        {
            return;
        }

        services.AddSingleton(new AuthenticationDecorated());
        var existing = services.LastOrDefault(static d => d.ServiceType == typeof(IAuthenticationService));
        Func<IServiceProvider, IAuthenticationService> inner = existing switch
        {
            null => static sp => ActivatorUtilities.CreateInstance<AuthenticationService>(sp),
            { ImplementationFactory: { } factory } => sp => (IAuthenticationService)factory(sp),
            { ImplementationInstance: IAuthenticationService instance } => _ => instance,
            { ImplementationType: { } type } => sp => (IAuthenticationService)ActivatorUtilities.CreateInstance(sp, type),
            _ => static sp => ActivatorUtilities.CreateInstance<AuthenticationService>(sp),
        };
        if (existing is not null)
        {
            services.Remove(existing);
        }

        services.Add(ServiceDescriptor.Describe(
            typeof(IAuthenticationService),
            sp => new SessionAuthenticationService(inner(sp), sp.GetRequiredService<IOptions<ClusterSessionOptions>>()),
            existing?.Lifetime ?? ServiceLifetime.Scoped));
    }
}
