using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Configuration;

/// <summary>
/// <c>AddClusterSession(IConfiguration)</c>: binds <see cref="ClusterSessionOptions"/> from a section and chooses the store its
/// <c>Store:Kind</c> names among the <see cref="SessionStoreKind"/>s the store packages registered. The choice is made when the
/// store is created (at start-up), because only then are the registered kinds known; a store chosen in code afterwards wins.
/// </summary>
internal static class ConfiguredStore
{
    public const string StoreSection = "Store";

    public static void Bind(IConfiguration configuration, ClusterSessionOptions options)
    {
        // The host's limits default to the shared SessionLimits.Default: bind onto a copy, never the shared instance.
        if (configuration.GetSection(nameof(ClusterSessionOptions.Limits)).Exists() && options.Limits is { } limits)
        {
            options.Limits = limits.Copy();
        }

        configuration.Bind(options);
        var store = configuration.GetSection(StoreSection);
        if (store.Exists())
        {
            options.UseStore(provider => Create(provider, options, store));
        }
    }

    private static ISessionStore Create(IServiceProvider provider, ClusterSessionOptions options, IConfigurationSection store)
    {
        var kinds = provider.GetServices<SessionStoreKind>().ToList();
        var names = string.Join(", ", kinds.Select(static k => k.Name));
        var name = store["Kind"];
        if (string.IsNullOrWhiteSpace(name))
        {
            throw Invalid($"{store.Path}:Kind is {(name is null ? "missing" : "empty")}: set it to the store to use, one of {names} (Redis and Postgres need their package and services.AddRedisSessionStoreKind() or services.AddPostgresSessionStoreKind()).");
        }

        var kind = kinds.FirstOrDefault(k => string.Equals(k.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw Invalid($"{store.Path}:Kind is \"{name}\", which no registered store has: use one of {names}, or register it (package ClusterSession.Redis: services.AddRedisSessionStoreKind(); package ClusterSession.Postgres: services.AddPostgresSessionStoreKind()).");
        var builder = new CapturingBuilder(options.Limits);
        kind.Use(builder, store.GetSection(kind.Name));
        return (builder.Factory ?? throw new InvalidOperationException($"The store kind {kind.Name} registered no store."))(provider);
    }

    private static OptionsValidationException Invalid(string message)
        => new(Options.DefaultName, typeof(ClusterSessionOptions), [message]);

    /// <summary>Keeps the factory a store kind registers, to create the store at once.</summary>
    private sealed class CapturingBuilder(SessionLimits limits) : ISessionStoreBuilder
    {
        public Func<IServiceProvider, ISessionStore>? Factory { get; private set; }

        public SessionLimits Limits => limits;

        public void UseStore(Func<IServiceProvider, ISessionStore> factory) => Factory = factory;
    }
}
