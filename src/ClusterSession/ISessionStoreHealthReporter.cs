namespace ClusterSession;

/// <summary>
/// Implemented by a store that can tell more about its health than whether a call succeeds: that it works,
/// but with less than the operator asked for (for example fewer replicas than writes are configured to wait
/// for). Health checks (ClusterSession.AspNetCore's <c>AddHealthChecks().AddClusterSession()</c>) call it
/// after a store call succeeded; a store that does not implement it is healthy whenever it answers.
/// </summary>
public interface ISessionStoreHealthReporter
{
    /// <summary>
    /// Reports the store's health. Cheap (a round trip or two), creates and writes no session (a store may write a probe key of its own, to learn
    /// whether writes are acknowledged as configured),
    /// and bounded by <paramref name="cancellationToken"/>. Throws <see cref="SessionStoreUnavailableException"/>
    /// when the store cannot be reached, as every store call does.
    /// </summary>
    ValueTask<SessionStoreHealth> GetHealthAsync(CancellationToken cancellationToken = default);
}

/// <summary>The health of a session store, as <see cref="ISessionStoreHealthReporter"/> reports it.</summary>
public sealed class SessionStoreHealth
{
    private SessionStoreHealth(SessionStoreHealthStatus status, string? description)
    {
        Status = status;
        Description = description;
    }

    /// <summary>Healthy, degraded or unhealthy.</summary>
    public SessionStoreHealthStatus Status { get; }

    /// <summary>
    /// What an operator should know, e.g. "1 of 2 replicas connected; saves wait for 2". Never a session id,
    /// attribute name or value.
    /// </summary>
    public string? Description { get; }

    /// <summary>The store works as configured.</summary>
    /// <param name="description">Optional detail.</param>
    public static SessionStoreHealth Healthy(string? description = null) => new(SessionStoreHealthStatus.Healthy, description);

    /// <summary>The store works, but with less than was configured; requests still succeed, or some may fail.</summary>
    /// <param name="description">What is missing and what to do.</param>
    public static SessionStoreHealth Degraded(string description)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(description);
        return new(SessionStoreHealthStatus.Degraded, description);
    }

    /// <summary>The store answers but cannot serve sessions (for example it accepts no writes).</summary>
    /// <param name="description">What is wrong and what to do.</param>
    public static SessionStoreHealth Unhealthy(string description)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(description);
        return new(SessionStoreHealthStatus.Unhealthy, description);
    }
}

/// <summary>The status in a <see cref="SessionStoreHealth"/>.</summary>
public enum SessionStoreHealthStatus
{
    /// <summary>The store works as configured.</summary>
    Healthy,

    /// <summary>The store works with less than was configured.</summary>
    Degraded,

    /// <summary>The store cannot serve sessions.</summary>
    Unhealthy,
}
