using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// Reports the session store: one cheap store call through the same timeout and circuit breaker as requests
/// (a load of an id that does not exist: it creates and writes nothing), then, when the store implements
/// <see cref="ISessionStoreHealthReporter"/>, what the store says about itself.
/// </summary>
internal sealed class ClusterSessionHealthCheck : IHealthCheck
{
    private readonly SessionRuntime _runtime;

    public ClusterSessionHealthCheck(SessionRuntime runtime) => _runtime = runtime;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failureStatus = context.Registration.FailureStatus;
        var started = Stopwatch.GetTimestamp();
        try
        {
            // While the circuit is open this fails at once, or is the call that tries the store when one is due;
            // its success closes the circuit for the requests too.
            await _runtime.ProbeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException ex)
        {
            return new HealthCheckResult(failureStatus, ex.RetryAfter is null
                ? "The session store is unavailable: " + ex.Message
                : ex.Message, data: Data());
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        if (_runtime.Store is not ISessionStoreHealthReporter reporter)
        {
            return HealthCheckResult.Healthy($"The session store answered in {elapsed.TotalMilliseconds:0} ms.", Data());
        }

        SessionStoreHealth health;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(_runtime.Options.StoreTimeout);
            try
            {
                health = await reporter.GetHealthAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (SessionStoreUnavailableException ex)
            {
                return new HealthCheckResult(failureStatus, "The session store is unavailable: " + ex.Message, data: Data());
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                return new HealthCheckResult(failureStatus,
                    $"The session store did not report its health within {_runtime.Options.StoreTimeout.TotalSeconds:0.###} s (ClusterSessionOptions.StoreTimeout).", data: Data());
            }
        }

        return health.Status switch
        {
            SessionStoreHealthStatus.Healthy => HealthCheckResult.Healthy(health.Description ?? $"The session store answered in {elapsed.TotalMilliseconds:0} ms.", Data()),
            SessionStoreHealthStatus.Degraded => HealthCheckResult.Degraded(health.Description, data: Data()),
            _ => new HealthCheckResult(failureStatus, health.Description, data: Data()),
        };
    }

    private Dictionary<string, object> Data() => new(StringComparer.Ordinal)
    {
        ["circuit"] = _runtime.Circuit.State switch
        {
            CircuitState.Closed => "closed",
            CircuitState.Open => "open",
            _ => "half_open",
        },
    };
}
