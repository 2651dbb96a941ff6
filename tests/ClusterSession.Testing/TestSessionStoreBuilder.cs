namespace ClusterSession.Testing;

/// <summary>
/// A host-free <see cref="ISessionStoreBuilder"/> for testing a store's <c>UseXxx(...)</c> registration: it keeps
/// the factory the registration gives it and creates the store on demand, as a host integration would.
/// </summary>
public sealed class TestSessionStoreBuilder : ISessionStoreBuilder
{
    private Func<IServiceProvider, ISessionStore>? _factory;

    /// <summary>The host's limits the store must take. Default <see cref="SessionLimits.Default"/>.</summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <inheritdoc />
    public void UseStore(Func<IServiceProvider, ISessionStore> factory)
        => _factory = factory ?? throw new ArgumentNullException(nameof(factory));

    /// <summary>Creates the store the registration chose, with <paramref name="services"/> (an empty provider when null).</summary>
    public ISessionStore CreateStore(IServiceProvider? services = null)
    {
        var factory = _factory ?? throw new InvalidOperationException("No store was registered: call a UseXxx(...) extension on this builder first.");
        return factory(services ?? NoServices.Instance);
    }

    private sealed class NoServices : IServiceProvider
    {
        public static NoServices Instance { get; } = new();

        public object? GetService(Type serviceType) => null;
    }
}
