namespace ClusterSession;

/// <summary>
/// The opt-in near cache of a shared store (Redis, PostgreSQL): each node keeps the sessions it has read
/// in its own memory and reads them again with no store round trip. Every change made through the store
/// (save, compare-and-set, delete, id change, revocation) tells every node to drop its copy, through the
/// store itself and in the same atomic step as the change; a node whose invalidation channel is down,
/// resubscribing or late bypasses and empties its cache until the channel is proven working again.
/// docs/near-cache.md says what this guarantees and when to turn it on.
/// </summary>
public sealed class NearCacheOptions
{
    /// <summary>Whether the near cache is on. Default false: every read goes to the store.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// The most memory the cached sessions may take on this node, in bytes, counted as the attribute names
    /// and values plus a fixed overhead per session. Past it the least recently used sessions are dropped.
    /// Default 64 MiB.
    /// </summary>
    public long SizeLimit { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// How long a cached copy may be served before it is read from the store again, whatever the
    /// invalidation channel says: the bound on staleness after a change the store did not announce
    /// (a key deleted by hand, an eviction). Default 30 seconds.
    /// </summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often this node sends a probe through its own invalidation channel. The cache is used only
    /// while a probe came back within three intervals, so a channel that silently stopped delivering
    /// turns the cache off within that time. Default 1 second.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Checks the options. Returns one message per invalid option, each naming the option and the fix; an empty list
    /// means the options are valid. (A store's options report these with the store's options type in the name.)
    /// </summary>
    /// <returns>The messages.</returns>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        AddFailures((option, value, fix) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{nameof(NearCacheOptions)}.{option["NearCache.".Length..]} is {value}: {fix}"), failures);
        return failures;
    }

    /// <summary>Adds a message per invalid setting (in <see cref="SessionStoreOptions"/>'s format) to <paramref name="failures"/>.</summary>
    internal void AddFailures(Func<string, object?, string, string> failure, ICollection<string> failures)
    {
        if (SizeLimit < 1024)
        {
            failures.Add(failure("NearCache.SizeLimit", SizeLimit, "use at least 1024 bytes; the default is 64 MiB."));
        }

        if (MaxAge <= TimeSpan.Zero)
        {
            failures.Add(failure("NearCache.MaxAge", MaxAge, "use a positive duration; the default is 30 seconds."));
        }

        if (HeartbeatInterval <= TimeSpan.Zero || HeartbeatInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add(failure("NearCache.HeartbeatInterval", HeartbeatInterval, "use a positive duration of at most one minute; the default is 1 second."));
        }
    }
}
