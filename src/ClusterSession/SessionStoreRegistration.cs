using ClusterSession;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The one way a store registers itself: every store package's <c>UseXxx(...)</c> (<c>UseInMemory</c>, <c>UseRedis</c>,
/// <c>UsePostgres</c>) calls <see cref="UseStore{TBuilder, TOptions}(TBuilder, Action{TOptions}, Func{IServiceProvider, TOptions, ISessionStore})"/> on a host integration's <see cref="ISessionStoreBuilder"/>.
/// </summary>
public static class SessionStoreRegistration
{
    /// <summary>
    /// Has a host integration's store builder use a store made from <typeparamref name="TOptions"/>. The store's
    /// limits are the builder's <see cref="ISessionStoreBuilder.Limits"/>, set once there, so that the host's checks
    /// and the store's cannot disagree.
    /// </summary>
    /// <param name="builder">The store builder.</param>
    /// <param name="configure">Sets the options.</param>
    /// <param name="create">Creates the store from the options (validated by the store itself).</param>
    /// <returns>The builder, for chaining.</returns>
    /// <exception cref="OptionsValidationException">
    /// (When the store is created.) <paramref name="configure"/> set other limits than the builder's.
    /// </exception>
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
            if (builder.Limits is { } limits && !limits.HasSameValues(options.Limits))
            {
                var name = typeof(TOptions).Name;
                throw new OptionsValidationException(name, typeof(TOptions), [
                    $"{name}.Limits differs from the limits of the host (such as ClusterSessionOptions.Limits): set the limits once, on the host's options; the store takes them from there."]);
            }

            return create(provider, options);
        });
        return builder;
    }

    /// <summary>
    /// Has a host integration's store builder use a store made from <typeparamref name="TOptions"/> bound from
    /// <paramref name="section"/> (<see cref="SessionStoreConfiguration.BindStoreOptions"/>, read once), as
    /// <see cref="UseStore{TBuilder, TOptions}(TBuilder, Action{TOptions}, Func{IServiceProvider, TOptions, ISessionStore})"/>
    /// does with code. A store package's <c>UseXxx(IConfiguration)</c> is this call.
    /// </summary>
    /// <param name="builder">The store builder.</param>
    /// <param name="section">The store's configuration section (such as <c>ClusterSession:Store:Redis</c>).</param>
    /// <param name="create">Creates the store from the options (validated by the store itself).</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder UseStore<TBuilder, TOptions>(this TBuilder builder, IConfiguration section, Func<IServiceProvider, TOptions, ISessionStore> create)
        where TBuilder : ISessionStoreBuilder
        where TOptions : SessionStoreOptions, new()
    {
        ArgumentNullException.ThrowIfNull(section);
        return builder.UseStore<TBuilder, TOptions>(options => SessionStoreConfiguration.BindStoreOptions(section, options), create);
    }
}
