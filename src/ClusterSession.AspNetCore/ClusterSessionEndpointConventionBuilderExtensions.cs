using ClusterSession.AspNetCore;

namespace Microsoft.AspNetCore.Builder;

/// <summary>ClusterSession's endpoint conventions.</summary>
public static class ClusterSessionEndpointConventionBuilderExtensions
{
    /// <summary>
    /// Requests to these endpoints may read the session but neither create, extend nor touch it, and may not write it
    /// (<see cref="DoesNotExtendSessionAttribute"/>): for polling endpoints, e.g.
    /// <c>app.MapGet("/notifications", ...).DoesNotExtendSession()</c>.
    /// </summary>
    /// <typeparam name="TBuilder">The endpoint convention builder (a minimal API, a route group, controllers).</typeparam>
    /// <param name="builder">The endpoints.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TBuilder DoesNotExtendSession<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Add(static endpoint => endpoint.Metadata.Add(new DoesNotExtendSessionAttribute()));
        return builder;
    }
}
