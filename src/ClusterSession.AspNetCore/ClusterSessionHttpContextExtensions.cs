using ClusterSession.AspNetCore;
using ClusterSession.AspNetCore.Sessions;

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

    /// <summary>
    /// The session of this request without loading it: for write-only requests. <c>Set</c> (and
    /// <c>HttpContext.Session.Remove</c>) on a session that arrived with an id are recorded without a load and
    /// saved with one store call; if the stored session turned out to be gone, the writes start a new session
    /// with a new id. The first read (<c>TryGetValue</c>, <c>Keys</c>, <c>Id</c>, metadata) loads the session
    /// synchronously and sees the writes made so far: to read, prefer <see cref="GetClusterSessionAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException"><c>app.UseClusterSession()</c> did not run for this request.</exception>
    public static IClusterSession GetClusterSession(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return RequestSession.Get(context);
    }
}
