namespace ClusterSession;

/// <summary>
/// What an operator's tool (the <c>clustersession</c> command, or a third party's) asks of a store beyond
/// <see cref="ISessionStore"/>: the cost of a full count before it runs, and a sample of how much room
/// sessions take and how long they have left. Nothing here returns a session id, an attribute name or a value.
/// The Redis and PostgreSQL stores implement it; tools test for it with <c>store as ISessionStoreAdministration</c>.
/// </summary>
public interface ISessionStoreAdministration
{
    /// <summary>
    /// A cheap upper bound of the keys or rows <see cref="ISessionStore.CountAsync"/> would examine (Redis: the keys of
    /// every master, <c>DBSIZE</c>; PostgreSQL: the planner's row estimate of the sessions table). A tool warns or asks
    /// for confirmation before counting when it is large.
    /// </summary>
    ValueTask<long> EstimateCountCostAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Measures up to <paramref name="maxSessions"/> live sessions, taken in the store's own order (not at random):
    /// the bytes each takes in the store and its time to live.
    /// </summary>
    ValueTask<SessionStoreSample> SampleAsync(int maxSessions, CancellationToken cancellationToken = default);
}

/// <summary>The result of <see cref="ISessionStoreAdministration.SampleAsync"/>.</summary>
public sealed class SessionStoreSample
{
    /// <summary>Creates a sample.</summary>
    /// <param name="sessionBytes">The bytes each sampled session takes in the store.</param>
    /// <param name="timesToLive">The time to live of each sampled session, in the same order.</param>
    /// <param name="totalStorageBytes">The store's whole footprint when it can tell cheaply (PostgreSQL: the tables and indexes); otherwise null.</param>
    public SessionStoreSample(IReadOnlyList<long> sessionBytes, IReadOnlyList<TimeSpan> timesToLive, long? totalStorageBytes)
    {
        ArgumentNullException.ThrowIfNull(sessionBytes);
        ArgumentNullException.ThrowIfNull(timesToLive);
        SessionBytes = sessionBytes;
        TimesToLive = timesToLive;
        TotalStorageBytes = totalStorageBytes;
    }

    /// <summary>The bytes each sampled session takes in the store (Redis: <c>MEMORY USAGE</c>; PostgreSQL: <c>pg_column_size</c> of its rows).</summary>
    public IReadOnlyList<long> SessionBytes { get; }

    /// <summary>The time to live of each sampled session: until its idle or absolute expiry, whichever comes first.</summary>
    public IReadOnlyList<TimeSpan> TimesToLive { get; }

    /// <summary>The store's whole footprint when it can tell cheaply; otherwise null.</summary>
    public long? TotalStorageBytes { get; }
}
