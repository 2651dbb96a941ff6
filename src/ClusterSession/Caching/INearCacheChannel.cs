namespace ClusterSession.Caching;

/// <summary>
/// What a store implements so that <see cref="NearCachedSessionStore"/> can keep copies of its sessions: the store's
/// side of the invalidation channel. The layer owns the copies and every rule about when one may be served; the channel
/// only carries messages between the nodes that share the store.
/// </summary>
/// <remarks>
/// <para>
/// The one part that stays inside the store is the announcement of a change: every write that changes or ends a
/// session must send an invalidation to every node <em>atomically with the change</em> (a Redis script's PUBLISH,
/// a PostgreSQL <c>pg_notify</c> in the write's statement), so that a change is never visible without its message
/// being on its way. An invalidation names the session by <see cref="KeyOf"/>, never by its id (an id is a bearer
/// credential; whoever can listen must not learn it), and carries the version the change produced, or says that the
/// session ended (<see cref="NearCachedSessionStore.Gone"/>). It may carry the <see cref="NodeId"/> of the node that
/// made it, so that the other nodes acknowledge it to that node only (<see cref="AcknowledgeAsync"/>).
/// </para>
/// <para>
/// A channel delivers to the <see cref="INearCacheListener"/> given to <see cref="Attach"/>, one message at a time and
/// in the order the store sent them (a heartbeat that comes back then proves that every invalidation sent before it
/// was applied). It calls <see cref="INearCacheListener.OnChannelDown"/> whenever it may have lost a message: a
/// connection failed or was restored, it resubscribed, it heard a message it cannot parse. Nothing is served until a
/// heartbeat sent after that moment comes back, so a channel that reports too much costs cache hits, never freshness.
/// </para>
/// <para>
/// Members may be called from any thread; <see cref="SendHeartbeatAsync"/> and <see cref="AcknowledgeAsync"/> are
/// fire-and-forget for the layer (a failure is what the heartbeat lag detects), so they must not block.
/// </para>
/// </remarks>
public interface INearCacheChannel
{
    /// <summary>
    /// This node's name on the channel (this store instance's, precisely): random, fixed for the instance's life, made
    /// of characters the channel's messages can carry. Its heartbeats and acknowledgements carry it.
    /// </summary>
    string NodeId { get; }

    /// <summary>
    /// The key that stands for the session <paramref name="id"/> in this store's invalidations: a one-way digest of the
    /// id (or a value derived from one, such as <see cref="SessionHandle.FromId"/>), the same on every node at any one
    /// time. When the scheme changes (a layout upgrade), call <see cref="INearCacheListener.OnChannelDown"/>.
    /// </summary>
    /// <param name="id">A well-formed session id.</param>
    string KeyOf(string id);

    /// <summary>
    /// Called once by the layer, before any other member: the channel delivers every message from now on to
    /// <paramref name="listener"/>. The channel subscribes when it is ready (at once, or on the store's first use);
    /// until a heartbeat comes back through it, the layer serves nothing.
    /// </summary>
    /// <param name="listener">The layer.</param>
    void Attach(INearCacheListener listener);

    /// <summary>
    /// Sends heartbeat <paramref name="number"/> of this node through the store so that every node's channel delivers it,
    /// this node's included (<see cref="INearCacheListener.OnHeartbeat"/> with <see cref="NodeId"/> and the number). On a
    /// store of several shards, report it back only once it came back from every shard. Called every
    /// <see cref="NearCacheOptions.HeartbeatInterval"/>; a channel not subscribed yet may return without sending.
    /// </summary>
    /// <param name="number">The heartbeat's number, increasing.</param>
    Task SendHeartbeatAsync(long number);

    /// <summary>
    /// Tells the node that made a change that this node applied it: that node's
    /// <see cref="INearCacheListener.OnAcknowledgement"/> is then called with <paramref name="key"/>,
    /// <paramref name="version"/> and this node's <see cref="NodeId"/>. Send it to <paramref name="writer"/> when the
    /// invalidation named it, else to every node (the writer recognises its write by key and version). The layer calls
    /// it for every invalidation it applied that another node (or an unnamed one) made; a writer waits for it from every
    /// live node, at most four heartbeat intervals, so a lost acknowledgement costs time, never freshness.
    /// </summary>
    /// <param name="key">The session's invalidation key.</param>
    /// <param name="version">The version applied; <see cref="NearCachedSessionStore.Gone"/> for an end.</param>
    /// <param name="writer">The node that made the change, or null when the invalidation did not say.</param>
    Task AcknowledgeAsync(string key, long version, string? writer);

    /// <summary>
    /// Delivers, before returning, every message that has already reached this process. The layer calls it before each
    /// lookup, so that a read never passes an invalidation that arrived before it. A channel that delivers each message
    /// as it arrives does nothing (the default).
    /// </summary>
    void DeliverReceived()
    {
    }

    /// <summary>
    /// Whether a write of the store returns only once this node's channel delivered the write's announcement (and so every
    /// message sent before it), as the PostgreSQL store's writes do (they wait for their own notification). False (the
    /// default): after a write returns, the layer waits until the channel delivered its announcement to
    /// <see cref="INearCacheListener.OnInvalidation"/> (at most four heartbeat intervals) before it chooses the nodes to
    /// wait for, so that a node whose first heartbeat went out before the write is among them.
    /// </summary>
    bool DeliversBeforeWriteReturns => false;

    /// <summary>
    /// The nodes the store knows to be listening to the channel now (their <see cref="NodeId"/>s; this node's may be among
    /// them): those whose heartbeat went out within the last four <see cref="NearCacheOptions.HeartbeatInterval"/>s, or
    /// whose subscription is open. The layer asks once a heartbeat sent after <see cref="INearCacheListener.OnSubscribed"/>
    /// came back: a node serving copies then either sent a heartbeat this node heard, or one before it subscribed, which
    /// the store must have recorded before sending it. Until the list came back, this node's writes do not return (at most
    /// four intervals). A store that keeps no such record returns an empty list (the default); a node that joins then
    /// learns of the others only from their next heartbeat, and its writes before that may leave a copy stale.
    /// </summary>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The nodes' ids.</returns>
    Task<IReadOnlyCollection<string>> ListNodesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyCollection<string>>([]);
}

/// <summary>
/// What an <see cref="INearCacheChannel"/> delivers its messages to: the <see cref="NearCachedSessionStore"/> layer.
/// Thread-safe; a channel calls it one message at a time, in the order the store sent them.
/// </summary>
public interface INearCacheListener
{
    /// <summary>
    /// The session whose invalidation key is <paramref name="key"/> changed to <paramref name="version"/>, or ended
    /// (<see cref="NearCachedSessionStore.Gone"/>). A copy older than the version is dropped; loads in flight do not cache
    /// what they read. An end is acknowledged to <paramref name="writer"/> (to every node when null), unless this node
    /// made it.
    /// </summary>
    /// <param name="key">The session's invalidation key (<see cref="INearCacheChannel.KeyOf"/>).</param>
    /// <param name="version">The version the change produced; <see cref="NearCachedSessionStore.Gone"/> when it ended.</param>
    /// <param name="writer">The node that made the change, when the message says.</param>
    void OnInvalidation(string key, long version, string? writer);

    /// <summary>
    /// Heartbeat <paramref name="number"/> of node <paramref name="node"/> came through the channel. This node's own prove
    /// the channel delivers (the layer serves copies again); another node's say that node is live and acknowledges
    /// invalidations (this node's writes then wait for its acknowledgements). Report only nodes that acknowledge every
    /// invalidation: a node of an older protocol is not waited for.
    /// </summary>
    /// <param name="node">The node that sent it (<see cref="INearCacheChannel.NodeId"/>).</param>
    /// <param name="number">The heartbeat's number.</param>
    void OnHeartbeat(string node, long number);

    /// <summary>Node <paramref name="node"/> said it stops: no acknowledgement from it is waited for any more.</summary>
    /// <param name="node">The node that left.</param>
    void OnNodeLeft(string node);

    /// <summary>Node <paramref name="node"/> applied <paramref name="version"/> (or an end) of the session <paramref name="key"/>.</summary>
    /// <param name="key">The session's invalidation key.</param>
    /// <param name="version">The version it applied; <see cref="NearCachedSessionStore.Gone"/> for an end.</param>
    /// <param name="node">The node that acknowledged.</param>
    void OnAcknowledgement(string key, long version, string node);

    /// <summary>
    /// The channel may have missed a message (it is down, resubscribing, or the key scheme changed): the layer empties its
    /// copies and serves none until a heartbeat sent after this call comes back (the next one, at the heartbeat interval).
    /// </summary>
    void OnChannelDown();

    /// <summary>
    /// The channel has just (re)subscribed, or is resubscribing: every message sent from now on (or from its
    /// resubscription) is delivered. As <see cref="OnChannelDown"/> (loads begun earlier may have missed a message), and
    /// the layer sends a heartbeat at once, so the cache is on again as soon as it comes back; it then asks
    /// <see cref="INearCacheChannel.ListNodesAsync"/> for the nodes whose heartbeats it may have missed.
    /// </summary>
    void OnSubscribed();
}

/// <summary>
/// A store that says which version its save produced. <see cref="NearCachedSessionStore"/> then keeps this node's copy
/// after this node's own save (it applies the change to the copy); without it, the copy is dropped and read again.
/// </summary>
public interface IVersionedSessionStore : ISessionStore
{
    /// <summary>
    /// Saves like <see cref="ISessionStore.SaveAsync"/> and returns the session's version after the save (the version
    /// the save's invalidation carries), or <see cref="SessionSaveResult.Gone"/> with any version.
    /// </summary>
    /// <param name="changes">The change set.</param>
    /// <param name="cancellationToken">Cancels the save.</param>
    ValueTask<SessionSaveOutcome> SaveWithVersionAsync(SessionChanges changes, CancellationToken cancellationToken = default);
}

/// <summary>What a save did, and the version the session has after it (meaningful when it was saved).</summary>
/// <param name="Result">Whether the save landed.</param>
/// <param name="Version">The session's version after the save.</param>
public readonly record struct SessionSaveOutcome(SessionSaveResult Result, long Version);
