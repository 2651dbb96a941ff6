namespace ClusterSession.InMemory;

/// <summary>Options of <see cref="InMemorySessionStore"/>; the shared ones are on <see cref="SessionStoreOptions"/>.</summary>
public sealed class InMemorySessionStoreOptions : SessionStoreOptions
{
    /// <summary>How often the background sweep runs. Default 1 minute. Must be positive.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The most sessions one sweep examines (and so at most removes), which bounds the work of one
    /// tick; the next tick continues where this one stopped. Default 10,000. Must be at least 1.
    /// </summary>
    public int SweepBatchSize { get; set; } = 10_000;

    /// <inheritdoc />
    protected override void AddFailures(ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        if (SweepInterval <= TimeSpan.Zero || SweepInterval == Timeout.InfiniteTimeSpan)
        {
            failures.Add(Failure(nameof(SweepInterval), SweepInterval, "set a positive interval such as 00:01:00."));
        }

        if (SweepBatchSize < 1)
        {
            failures.Add(Failure(nameof(SweepBatchSize), SweepBatchSize, "set it to at least 1 (default 10000)."));
        }
    }
}
