using System.Globalization;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// Options of <see cref="RedisSessionStore"/>. Set either <see cref="Configuration"/> or <see cref="ConnectionMultiplexerFactory"/>.
/// The options every store shares (touch interval, limits) and their validation are on <see cref="SessionStoreOptions"/>.
/// </summary>
public sealed class RedisSessionStoreOptions : SessionStoreOptions
{
    /// <summary>
    /// A StackExchange.Redis configuration string (for example <c>"127.0.0.1:6379"</c>, or several
    /// endpoints of a Redis Cluster). The store creates one multiplexer from it, owns it and disposes it.
    /// Default: null.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// Supplies a multiplexer the application already has (one per application is the rule).
    /// The store uses it but does not dispose it. Takes precedence over <see cref="Configuration"/>. Default: null.
    /// </summary>
    public Func<Task<IConnectionMultiplexer>>? ConnectionMultiplexerFactory { get; set; }

    /// <summary>
    /// Prepended to every key, so several applications (or tests) can share one Redis.
    /// Must not contain '{' or '}' (the store puts the session id in a hash tag). Default: <c>"cs:"</c>.
    /// </summary>
    public string KeyPrefix { get; set; } = "cs:";

    /// <summary>
    /// How long one store operation may take in total, connecting and every round trip included. At the
    /// deadline the operation is cancelled and fails with <see cref="SessionStoreUnavailableException"/>; a
    /// caller's own token (ASP.NET Core's <c>StoreTimeout</c>) can end it sooner. Default: 5 seconds.
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The Redis key of the list that keeps ASP.NET Core Data Protection's key ring, shared by every server
    /// (see <see cref="IKeyRingStore"/>). Servers of one application must use the same key; different
    /// applications on one Redis need different keys (a different <see cref="KeyPrefix"/> gives them).
    /// Default: null, which means <see cref="KeyPrefix"/> followed by <c>dataprotection-keys</c>.
    /// </summary>
    public string? KeyRingKey { get; set; }

    /// <summary>
    /// How many replicas must have a write before the store reports it done: every write (create, save,
    /// compare-and-set, delete, id change, principal index) is followed by Redis <c>WAIT</c> in the same round trip,
    /// and fails with <see cref="SessionStoreUnavailableException"/> when fewer replicas acknowledge it within
    /// <see cref="ReplicaWaitTimeout"/>. With 1 (and one replica), a write acknowledged to the application survives a
    /// failover. Loads (and their throttled touch) never wait. 0 (the default) does not wait: a write acknowledged by
    /// the primary alone can be lost when the primary fails before replicating it. Between 0 and 16.
    /// </summary>
    public int WaitForReplicas { get; set; }

    /// <summary>
    /// How long a write waits for <see cref="WaitForReplicas"/> replicas (the <c>WAIT</c> timeout). Must be shorter than
    /// <see cref="OperationTimeout"/>. Default: 1 second.
    /// </summary>
    public TimeSpan ReplicaWaitTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The opt-in near cache: each node serves sessions it has read from its own memory, with no store round
    /// trip, until a change made through the store anywhere invalidates its copy. Off by default; see
    /// <see cref="NearCacheOptions"/> and docs/near-cache.md.
    /// </summary>
    public NearCacheOptions NearCache { get; set; } = new();

    /// <inheritdoc />
    protected override void AddFailures(ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        AddNearCacheFailures(NearCache, failures);

        if (ConnectionMultiplexerFactory is null && string.IsNullOrWhiteSpace(Configuration))
        {
            failures.Add(Failure(nameof(Configuration), Configuration, "set it to a Redis configuration string such as \"127.0.0.1:6379\", or set ConnectionMultiplexerFactory to share an existing multiplexer."));
        }

        if (KeyPrefix is null || KeyPrefix.Contains('{', StringComparison.Ordinal) || KeyPrefix.Contains('}', StringComparison.Ordinal))
        {
            failures.Add(Failure(nameof(KeyPrefix), KeyPrefix, "use a non-null prefix without '{' or '}' (the store uses a hash tag for the session id), such as \"myapp:\"."));
        }

        if (OperationTimeout <= TimeSpan.Zero || OperationTimeout > TimeSpan.FromMinutes(5))
        {
            failures.Add(Failure(nameof(OperationTimeout), OperationTimeout, "use a positive time of at most 5 minutes; the default is 5 seconds."));
        }

        if (KeyRingKey is not null && string.IsNullOrWhiteSpace(KeyRingKey))
        {
            failures.Add(Failure(nameof(KeyRingKey), KeyRingKey, "leave it null (the default, KeyPrefix + \"dataprotection-keys\") or set a key name such as \"myapp:dataprotection-keys\"."));
        }

        if (WaitForReplicas is < 0 or > 16)
        {
            failures.Add(Failure(nameof(WaitForReplicas), WaitForReplicas, "use 0 (do not wait) or the number of replicas every write must reach, at most 16."));
        }

        if (WaitForReplicas > 0 && (ReplicaWaitTimeout < TimeSpan.FromMilliseconds(1) || ReplicaWaitTimeout >= OperationTimeout))
        {
            failures.Add(Failure(nameof(ReplicaWaitTimeout), ReplicaWaitTimeout, string.Create(CultureInfo.InvariantCulture, $"use at least 1 ms and less than OperationTimeout ({OperationTimeout}), so a write can wait for its replicas and still answer in time; the default is 1 second.")));
        }
    }
}
