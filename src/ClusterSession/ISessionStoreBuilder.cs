namespace ClusterSession;

/// <summary>
/// Where a host integration (such as ClusterSession.AspNetCore's <c>ClusterSessionOptions</c>) lets a store
/// register itself. Each store package adds its own <c>UseXxx(...)</c> extension on this interface, so the
/// integration depends on no store and an application references only the store it uses.
/// </summary>
public interface ISessionStoreBuilder
{
    /// <summary>The limits a store should enforce unless configured otherwise.</summary>
    SessionLimits Limits { get; }

    /// <summary>Uses the store <paramref name="factory"/> creates (once, as a singleton).</summary>
    void UseStore(Func<IServiceProvider, ISessionStore> factory);
}
