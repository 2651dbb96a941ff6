namespace ClusterSession.AspNetCore;

/// <summary>
/// The circuit breaker in front of the session store (<see cref="ClusterSessionOptions.CircuitBreaker"/>).
/// After <see cref="FailureThreshold"/> store calls in a row fail as unavailable (refused, timed out), the
/// circuit opens: requests that need the session fail at once with
/// <see cref="ClusterSessionOptions.StoreUnavailableStatusCode"/> and a <c>Retry-After</c> header instead of
/// each waiting <see cref="ClusterSessionOptions.StoreTimeout"/>. Every <see cref="BreakDuration"/> one call
/// (a request or the health check) tries the store; the first call that succeeds closes the circuit.
/// Requests that never touch the session are not affected.
/// </summary>
public sealed class StoreCircuitBreakerOptions
{
    /// <summary>Whether the circuit breaker is on. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How many store calls in a row must fail as unavailable before the circuit opens. Only outages count:
    /// a session that is gone, a conflict, a limit or a cancelled request neither counts nor resets the count
    /// (a call the store answered resets it). At least 1. Default 5.
    /// </summary>
    public int FailureThreshold { get; set; } = 5;

    /// <summary>
    /// How long the circuit stays open before one call tries the store again (and after each failed try).
    /// Also the <c>Retry-After</c> hint. Between 100 milliseconds and 10 minutes. Default 5 seconds.
    /// </summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);
}
