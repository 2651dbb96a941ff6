namespace ClusterSession;

/// <summary>
/// Where a host integration (such as ClusterSession.AspNetCore's <c>ClusterSessionOptions</c>) lets a store
/// register itself. Each store package adds its own <c>UseXxx(...)</c> extension on this interface, so the
/// integration depends on no store and an application references only the store it uses.
/// </summary>
public interface ISessionStoreBuilder
{
    /// <summary>
    /// The limits the store enforces, set once on the host's options so that the host and the store cannot disagree:
    /// <c>UseStore&lt;TBuilder, TOptions&gt;</c> gives them to the store's options and refuses other values.
    /// </summary>
    SessionLimits Limits { get; }

    /// <summary>Uses the store <paramref name="factory"/> creates (once, as a singleton).</summary>
    void UseStore(Func<IServiceProvider, ISessionStore> factory);
}
