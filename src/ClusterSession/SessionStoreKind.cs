using Microsoft.Extensions.Configuration;

namespace ClusterSession;

/// <summary>
/// A store that configuration can choose by name: a host integration's configuration section names a kind
/// (<c>"Store": { "Kind": "Redis" }</c>) and the host finds the registered kind of that name among the services.
/// Each store package registers its own kind (<c>AddRedisSessionStoreKind()</c>, <c>AddPostgresSessionStoreKind()</c>;
/// the in-memory kind comes with the host), so the host depends on no store and a kind is available only where the
/// application references its package and says so in code: no assembly scanning, nothing trimmed away.
/// </summary>
public sealed class SessionStoreKind
{
    private readonly Action<ISessionStoreBuilder, IConfiguration> _use;

    /// <summary>Creates a kind.</summary>
    /// <param name="name">The name configuration uses (compared ignoring case), also the name of the store's own subsection.</param>
    /// <param name="use">Has a store builder use the store, with its options bound from the store's subsection.</param>
    public SessionStoreKind(string name, Action<ISessionStoreBuilder, IConfiguration> use)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(use);
        Name = name;
        _use = use;
    }

    /// <summary>The name configuration chooses the store by, such as <c>Redis</c>.</summary>
    public string Name { get; }

    /// <summary>Has <paramref name="builder"/> use this store, its options bound from <paramref name="section"/> (which may be empty).</summary>
    /// <param name="builder">The store builder.</param>
    /// <param name="section">The store's own subsection, such as <c>ClusterSession:Store:Redis</c>.</param>
    public void Use(ISessionStoreBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        _use(builder, section);
    }
}
