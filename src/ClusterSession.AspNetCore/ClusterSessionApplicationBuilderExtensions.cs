using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds the ClusterSession middleware.</summary>
public static class ClusterSessionApplicationBuilderExtensions
{
    /// <summary>
    /// Gives every request a lazily loaded ClusterSession (<c>HttpContext.Session</c> and
    /// <c>HttpContext.GetClusterSessionAsync()</c>). Replaces <c>app.UseSession()</c>; call it before
    /// <c>app.UseAuthentication()</c> and before the endpoints that use the session.
    /// </summary>
    public static IApplicationBuilder UseClusterSession(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.ApplicationServices.GetService(typeof(SessionRuntime)) is null)
        {
            throw new InvalidOperationException("ClusterSession services are missing: call services.AddClusterSession(...) before app.UseClusterSession().");
        }

        return app.UseMiddleware<ClusterSessionMiddleware>();
    }
}
