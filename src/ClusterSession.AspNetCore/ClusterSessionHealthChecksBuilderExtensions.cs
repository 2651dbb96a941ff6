using ClusterSession;
using ClusterSession.AspNetCore.Internal;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the ClusterSession health check.</summary>
public static class ClusterSessionHealthChecksBuilderExtensions
{
    /// <summary>The default name of the health check.</summary>
    public const string DefaultName = "cluster_session";

    /// <summary>
    /// Adds a health check of the session store configured in <c>services.AddClusterSession(...)</c>: healthy when
    /// a cheap store call (a load of an id that does not exist; no session is created or written) succeeds within
    /// <c>ClusterSessionOptions.StoreTimeout</c>; <paramref name="failureStatus"/> when it fails or the store's
    /// circuit is open (then it fails at once, or is the one call that tries the store again, so a healthy answer
    /// also closes the circuit); degraded or unhealthy when the store says so through
    /// <see cref="ISessionStoreHealthReporter"/>. Map it with <c>app.MapHealthChecks("/healthz")</c>: 200 while
    /// the store works, 503 while it is down.
    /// </summary>
    /// <param name="builder">The health checks builder from <c>services.AddHealthChecks()</c>.</param>
    /// <param name="name">The name of the check. Default <see cref="DefaultName"/>.</param>
    /// <param name="failureStatus">The status reported when the store is down. Default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by, e.g. <c>"ready"</c>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHealthChecksBuilder AddClusterSession(
        this IHealthChecksBuilder builder,
        string name = DefaultName,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            static sp => new ClusterSessionHealthCheck(sp.GetService<SessionRuntime>() ?? throw new InvalidOperationException(
                "The ClusterSession health check needs ClusterSession: call services.AddClusterSession(...) as well as services.AddHealthChecks().AddClusterSession().")),
            failureStatus,
            tags));
    }
}
