namespace ClusterSession.AspNetCore;

/// <summary>Store builders for <see cref="ClusterSessionOptions"/>.</summary>
public static class ClusterSessionOptionsStoreExtensions
{
    /// <summary>
    /// Keeps sessions in this process's memory: for development, tests and single-server apps. Sessions are not
    /// shared between servers and are lost on restart; use <c>UseRedis(...)</c> for a cluster.
    /// </summary>
    public static ClusterSessionOptions UseInMemory(this ClusterSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);

        // Replaced by the core's InMemorySessionStore when it lands on main.
        return options.UseStore(static _ => throw new NotSupportedException("The in-memory store is not available in this build yet."));
    }
}
