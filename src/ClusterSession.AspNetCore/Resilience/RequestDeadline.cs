namespace ClusterSession.AspNetCore.Resilience;

/// <summary>
/// The one store deadline of a request (or of one health check): it starts at the first store call and ends
/// <see cref="ClusterSessionOptions.StoreTimeout"/> later, so a request that loads, saves and touches waits for the
/// store at most once that long in all, not once per call. Each store call links its own token to this one; a
/// call made after the deadline passed fails at once, without reaching the store.
/// </summary>
/// <remarks>
/// The deadline starts at the first store call rather than at the start of the middleware: time the endpoint spends
/// on its own work before it touches the session is not store time, and a request that never calls the store starts
/// no timer. One <see cref="CancellationTokenSource"/> with <c>CancelAfter</c> applied once, as ASP.NET Core's
/// DistributedSession does; disposed with the response (<c>HttpResponse.RegisterForDispose</c>).
/// </remarks>
internal sealed class RequestDeadline : IDisposable
{
    private CancellationTokenSource? _source;

    public RequestDeadline(TimeSpan timeout) => Timeout = timeout;

    /// <summary>The whole budget: <see cref="ClusterSessionOptions.StoreTimeout"/>.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Whether the deadline started and has passed.</summary>
    public bool HasPassed => Volatile.Read(ref _source)?.IsCancellationRequested == true;

    /// <summary>The deadline's token; the first call starts it.</summary>
    public CancellationToken Start()
    {
        if (Volatile.Read(ref _source) is { } started)
        {
            return started.Token;
        }

        var source = new CancellationTokenSource();
        if (Interlocked.CompareExchange(ref _source, source, null) is { } raced)
        {
            // Two store calls of one request started at once (rare); the first one's deadline counts.
            source.Dispose();
            return raced.Token;
        }

        source.CancelAfter(Timeout);
        return source.Token;
    }

    public void Dispose() => Volatile.Read(ref _source)?.Dispose();
}
