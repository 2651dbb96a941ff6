using System.Globalization;

namespace ClusterSession.InMemory;

/// <summary>Options of <see cref="InMemorySessionStore"/>.</summary>
public sealed class InMemorySessionStoreOptions
{
    /// <summary>
    /// How old the last refresh of a session must be, as a fraction of its idle timeout, before a
    /// load refreshes it again. Default 0.1 (a session with a 20-minute idle timeout is refreshed at
    /// most every 2 minutes by loads, so it may expire up to 2 minutes early). 0 refreshes on every
    /// load. Must be between 0 and 0.5. Saves and compare-and-set always refresh.
    /// </summary>
    public double TouchIntervalFraction { get; set; } = 0.1;

    /// <summary>How often the background sweep runs. Default 1 minute. Must be positive.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The most sessions one sweep examines (and so at most removes), which bounds the work of one
    /// tick; the next tick continues where this one stopped. Default 10,000. Must be at least 1.
    /// </summary>
    public int SweepBatchSize { get; set; } = 10_000;

    /// <summary>The attribute limits the store enforces. Default <see cref="SessionLimits.Default"/>.</summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <summary>
    /// Checks the options. Returns one message per invalid option, naming the option and the fix;
    /// an empty list means the options are valid.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (double.IsNaN(TouchIntervalFraction) || TouchIntervalFraction < 0 || TouchIntervalFraction > 0.5)
        {
            errors.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"InMemorySessionStoreOptions.TouchIntervalFraction is {TouchIntervalFraction}: set it between 0 (refresh on every load) and 0.5 (refresh after half the idle timeout)."));
        }

        if (SweepInterval <= TimeSpan.Zero || SweepInterval == Timeout.InfiniteTimeSpan)
        {
            errors.Add($"InMemorySessionStoreOptions.SweepInterval is {SweepInterval}: set a positive interval such as 00:01:00.");
        }

        if (SweepBatchSize < 1)
        {
            errors.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"InMemorySessionStoreOptions.SweepBatchSize is {SweepBatchSize}: set it to at least 1 (default 10000)."));
        }

        if (Limits is null)
        {
            errors.Add("InMemorySessionStoreOptions.Limits is null: leave it at SessionLimits.Default or set a SessionLimits instance.");
        }

        return errors;
    }
}
