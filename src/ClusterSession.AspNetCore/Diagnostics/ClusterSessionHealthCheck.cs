using System.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClusterSession.AspNetCore.Diagnostics;

/// <summary>
/// Reports the session store: one cheap store call (a load of an id that does not exist: it creates and writes
/// nothing), then, when the store implements <see cref="ISessionStoreHealthReporter"/>, what the store says about
/// itself. Both go through the runtime's one path for store calls (circuit breaker, metrics) and share one
/// <see cref="RequestDeadline"/>, so a check takes at most <see cref="ClusterSessionOptions.StoreTimeout"/> in all.
/// As a readiness check (<paramref name="readiness"/>) a store that reports itself degraded (it works with less than
/// configured, e.g. writes that cannot get the replica acknowledgements they wait for) is not ready either.
/// </summary>
internal sealed class ClusterSessionHealthCheck(SessionRuntime runtime, bool readiness = false) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failureStatus = context.Registration.FailureStatus;
        var started = Stopwatch.GetTimestamp();
        using var deadline = new RequestDeadline(runtime.Options.StoreTimeout);
        SessionStoreHealth? health = null;
        try
        {
            // While the circuit is open this fails at once, or is the call that tries the store when one is due;
            // its success closes the circuit for the requests too.
            await runtime.ProbeAsync(deadline, cancellationToken).ConfigureAwait(false);
            if (runtime.Store is ISessionStoreHealthReporter reporter)
            {
                health = await runtime.ReportHealthAsync(reporter, deadline, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (SessionStoreUnavailableException ex)
        {
            return new HealthCheckResult(failureStatus, ex.RetryAfter is null
                ? "The session store is unavailable: " + ex.Message
                : ex.Message, data: Data());
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        return health?.Status switch
        {
            null or SessionStoreHealthStatus.Healthy => HealthCheckResult.Healthy(health?.Description ?? $"The session store answered in {elapsed.TotalMilliseconds:0} ms.", Data()),
            SessionStoreHealthStatus.Degraded when !readiness => HealthCheckResult.Degraded(health.Description, data: Data()),
            SessionStoreHealthStatus.Degraded => new HealthCheckResult(failureStatus, "Not ready: " + health.Description, data: Data()),
            _ => new HealthCheckResult(failureStatus, health.Description, data: Data()),
        };
    }

    private Dictionary<string, object> Data() => CircuitData(runtime);

    /// <summary>The circuit's state, as every ClusterSession check reports it.</summary>
    internal static Dictionary<string, object> CircuitData(SessionRuntime runtime) => new(StringComparer.Ordinal)
    {
        ["circuit"] = runtime.Circuit.State switch
        {
            CircuitState.Closed => "closed",
            CircuitState.Open => "open",
            _ => "half_open",
        },
    };
}

/// <summary>
/// The liveness check: healthy while the process runs and ClusterSession is set up, whatever the store does. A node
/// whose store is down is not ready, but restarting it would not bring the store back; the circuit's state is
/// reported as data. Makes no store call.
/// </summary>
internal sealed class ClusterSessionLivenessCheck(SessionRuntime runtime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(HealthCheckResult.Healthy("ClusterSession is running; the store's state is the readiness check's concern.", ClusterSessionHealthCheck.CircuitData(runtime)));
}
