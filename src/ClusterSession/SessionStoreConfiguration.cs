using ClusterSession;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Configuration binding of store options and the registration of <see cref="SessionStoreKind"/>s, shared by every
/// store package, so that each one binds the same way and reports the same messages as its code path.
/// </summary>
public static class SessionStoreConfiguration
{
    /// <summary>
    /// Binds <paramref name="options"/> from <paramref name="section"/> with the configuration binder: every public
    /// settable option, nested ones included (<c>NearCache:Enabled</c>), times as <c>hh:mm:ss</c>. Limits belong to the
    /// host: a <c>Limits</c> subsection here is bound onto a copy, which then fails the store's usual check
    /// ("differs from the limits of the host") when the store is created; the shared limits are never changed.
    /// Read once: a change of the configuration later does not reach a store already created.
    /// </summary>
    /// <param name="section">The store's subsection.</param>
    /// <param name="options">The options to set.</param>
    public static void BindStoreOptions(IConfiguration section, SessionStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(options);
        if (section.GetSection(nameof(SessionStoreOptions.Limits)).Exists() && options.Limits is { } limits)
        {
            options.Limits = limits.Copy();
        }

        section.Bind(options);
    }

    /// <summary>
    /// Makes a store choosable by name from configuration (<see cref="SessionStoreKind"/>). Registering a name twice
    /// keeps the first registration.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="name">The kind's name, such as <c>Redis</c>.</param>
    /// <param name="use">Has a store builder use the store, with its options bound from the store's subsection.</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddSessionStoreKind(this IServiceCollection services, string name, Action<ISessionStoreBuilder, IConfiguration> use)
    {
        ArgumentNullException.ThrowIfNull(services);
        var kind = new SessionStoreKind(name, use);
        if (!services.Any(d => d.ServiceType == typeof(SessionStoreKind) && d.ImplementationInstance is SessionStoreKind k && string.Equals(k.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            services.AddSingleton(kind);
        }

        return services;
    }

    /// <summary>
    /// Makes a store choosable by name from configuration (<see cref="SessionStoreKind"/>): its
    /// <typeparamref name="TOptions"/> are bound from the store's subsection and <paramref name="create"/> makes the store.
    /// A store package's <c>AddXxxSessionStoreKind()</c> is this call. Registering a name twice keeps the first registration.
    /// </summary>
    /// <typeparam name="TOptions">The store's options.</typeparam>
    /// <param name="services">The services.</param>
    /// <param name="name">The kind's name, such as <c>Redis</c>.</param>
    /// <param name="create">Creates the store from the bound options (validated by the store itself).</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddSessionStoreKind<TOptions>(this IServiceCollection services, string name, Func<IServiceProvider, TOptions, ISessionStore> create)
        where TOptions : SessionStoreOptions, new()
    {
        ArgumentNullException.ThrowIfNull(create);
        return services.AddSessionStoreKind(name, (builder, section) => builder.UseStore(section, create));
    }
}
