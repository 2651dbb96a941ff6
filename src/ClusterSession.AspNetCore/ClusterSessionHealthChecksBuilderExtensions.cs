using ClusterSession;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the ClusterSession health checks: the store check (<see cref="AddClusterSession"/>), or a liveness and a
/// readiness check (<see cref="AddClusterSessionLiveness"/>, <see cref="AddClusterSessionReadiness"/>) tagged
/// <see cref="LiveTag"/> and <see cref="ReadyTag"/> for <c>/healthz/live</c> and <c>/healthz/ready</c>.
/// </summary>
public static class ClusterSessionHealthChecksBuilderExtensions
{
    /// <summary>The default name of the health check.</summary>
    public const string DefaultName = "cluster_session";

    /// <summary>The default name of the liveness check.</summary>
    public const string DefaultLivenessName = "cluster_session_live";

    /// <summary>The default name of the readiness check.</summary>
    public const string DefaultReadinessName = "cluster_session_ready";

    /// <summary>
    /// The tag of the liveness check, for <c>app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = c =&gt; c.Tags.Contains("live") })</c>.
    /// </summary>
    public const string LiveTag = "live";

    /// <summary>
    /// The tag of the readiness check, for <c>app.MapHealthChecks("/healthz/ready", new HealthCheckOptions { Predicate = c =&gt; c.Tags.Contains("ready") })</c>.
    /// </summary>
    public const string ReadyTag = "ready";

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
            static sp => new ClusterSessionHealthCheck(RuntimeOf(sp)),
            failureStatus,
            tags));
    }

    /// <summary>
    /// Adds a liveness check, tagged <see cref="LiveTag"/>: healthy while the process runs with ClusterSession set up,
    /// whether or not the store answers (a node whose store is down is not ready, but restarting it would not help).
    /// It makes no store call; its data reports the state of the store's circuit breaker.
    /// </summary>
    /// <param name="builder">The health checks builder from <c>services.AddHealthChecks()</c>.</param>
    /// <param name="name">The name of the check. Default <see cref="DefaultLivenessName"/>.</param>
    /// <param name="tags">More tags; <see cref="LiveTag"/> is always added.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHealthChecksBuilder AddClusterSessionLiveness(
        this IHealthChecksBuilder builder,
        string name = DefaultLivenessName,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            static sp => new ClusterSessionLivenessCheck(RuntimeOf(sp)),
            HealthStatus.Unhealthy,
            WithTag(tags, LiveTag)));
    }

    /// <summary>
    /// Adds a readiness check, tagged <see cref="ReadyTag"/>: ready (healthy) only while the store takes writes as
    /// configured. It makes the store check's cheap call, then asks a store that implements
    /// <see cref="ISessionStoreHealthReporter"/>; a store that reports itself degraded is not ready either (the Redis
    /// store with <c>WaitForReplicas</c>: while a write does not get its replica acknowledgements, every save fails).
    /// All of it goes through the circuit breaker and fits in one <c>ClusterSessionOptions.StoreTimeout</c>.
    /// </summary>
    /// <param name="builder">The health checks builder from <c>services.AddHealthChecks()</c>.</param>
    /// <param name="name">The name of the check. Default <see cref="DefaultReadinessName"/>.</param>
    /// <param name="failureStatus">The status reported when not ready. Default <see cref="HealthStatus.Unhealthy"/> (503).</param>
    /// <param name="tags">More tags; <see cref="ReadyTag"/> is always added.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHealthChecksBuilder AddClusterSessionReadiness(
        this IHealthChecksBuilder builder,
        string name = DefaultReadinessName,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            static sp => new ClusterSessionHealthCheck(RuntimeOf(sp), readiness: true),
            failureStatus,
            WithTag(tags, ReadyTag)));
    }

    private static SessionRuntime RuntimeOf(IServiceProvider services)
        => services.GetService<SessionRuntime>() ?? throw new InvalidOperationException(
            "The ClusterSession health checks need ClusterSession: call services.AddClusterSession(...) as well as services.AddHealthChecks().AddClusterSession...().");

    private static string[] WithTag(IEnumerable<string>? tags, string tag)
        => [.. (tags ?? []).Append(tag).Distinct(StringComparer.Ordinal)];
}
