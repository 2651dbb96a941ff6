using ClusterSession;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The one way a store registers itself, shared by every store package's <c>AddXxxSessionStore</c> and <c>UseXxx</c>.</summary>
public static class SessionStoreRegistration
{
    /// <summary>
    /// Registers <typeparamref name="TStore"/> as a singleton and as the application's <see cref="ISessionStore"/>
    /// (replacing any store registered before), with its options validated at startup by
    /// <see cref="SessionStoreOptionsValidator{TOptions}"/> and a <see cref="TimeProvider"/> (the system clock unless
    /// the application registers another).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options.</param>
    /// <param name="create">Creates the store from the validated options.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddSessionStore<TStore, TOptions>(
        this IServiceCollection services, Action<TOptions> configure, Func<IServiceProvider, TOptions, TStore> create)
        where TStore : class, ISessionStore
        where TOptions : SessionStoreOptions
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(create);
        services.AddOptions<TOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, SessionStoreOptionsValidator<TOptions>>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(provider => create(provider, provider.GetRequiredService<IOptions<TOptions>>().Value));
        services.Replace(ServiceDescriptor.Singleton<ISessionStore>(static provider => provider.GetRequiredService<TStore>()));
        return services;
    }

    /// <summary>
    /// Has a host integration's store builder use a store made from <typeparamref name="TOptions"/>, whose limits
    /// default to the builder's <see cref="ISessionStoreBuilder.Limits"/>.
    /// </summary>
    /// <param name="builder">The store builder.</param>
    /// <param name="configure">Sets the options.</param>
    /// <param name="create">Creates the store from the options (validated by the store itself).</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseStore<TBuilder, TOptions>(this TBuilder builder, Action<TOptions> configure, Func<IServiceProvider, TOptions, ISessionStore> create)
        where TBuilder : ISessionStoreBuilder
        where TOptions : SessionStoreOptions, new()
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(create);
        builder.UseStore(provider =>
        {
            var options = new TOptions { Limits = builder.Limits };
            configure(options);
            return create(provider, options);
        });
        return builder;
    }
}
