using ClusterSession.AspNetCore;
using ClusterSession.AspNetCore.Internal;

namespace Microsoft.AspNetCore.Http;

/// <summary>Access to the ClusterSession of a request.</summary>
public static class ClusterSessionHttpContextExtensions
{
    /// <summary>
    /// The session of this request, loaded from the store on first use (one store call per request at most).
    /// </summary>
    /// <exception cref="InvalidOperationException"><c>app.UseClusterSession()</c> did not run for this request.</exception>
    /// <exception cref="ClusterSession.SessionStoreUnavailableException">The store could not be reached; the middleware turns this into a 503.</exception>
    public static ValueTask<IClusterSession> GetClusterSessionAsync(this HttpContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return RequestSession.Get(context).GetLoadedAsync(cancellationToken);
    }
}
