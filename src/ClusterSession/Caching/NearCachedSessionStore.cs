using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace ClusterSession.Caching;

/// <summary>
/// The near cache (<see cref="NearCacheOptions"/>, docs/near-cache.md) as a layer over any <see cref="ISessionStore"/>:
/// this node keeps copies of the sessions it read and serves them with no round trip, for as long as the store's
/// <see cref="INearCacheChannel"/> proves that it delivers every change made anywhere. The Redis and PostgreSQL stores
/// put it over themselves when <c>NearCache.Enabled</c> is set; another store gets the same guarantees by implementing
/// the channel (and, to keep copies after its own saves, <see cref="IVersionedSessionStore"/>).
/// </summary>
/// <remarks>
/// <para>What the layer guarantees, on every store:</para>
/// <list type="bullet">
/// <item>A copy is served only while the channel is proven: after <see cref="INearCacheListener.OnChannelDown"/>, or when
/// no heartbeat this node sent within the last three <see cref="NearCacheOptions.HeartbeatInterval"/>s has come back (a
/// channel running late proves only as much as the heartbeats it delivers are recent), the copies are dropped and none is
/// served until a heartbeat sent after that moment comes back.</item>
/// <item>A load that an invalidation of the same session overtook, or that started before the channel last went down, is
/// not cached. A copy lives at most <see cref="NearCacheOptions.MaxAge"/> and never past the session's expiry.</item>
/// <item>This node's own writes replace (a save, when the store reports its version) or drop (anything else, and any
/// write that failed, which may have landed) its copy before they return. The save's own announcement, which may arrive
/// before the save's reply, does not drop the copy; another node's change heard meanwhile does.</item>
/// <item>Never stale: a save, compare-and-set, delete or id change made through the layer (or <see cref="EndAsync{T}"/>)
/// returns once every other node whose heartbeat this node heard within ten intervals acknowledged its invalidation
/// (applied it), or, for a node that did not, once that node must have stopped serving copies: four heartbeat intervals
/// after the write returned (counted in <c>cluster_session.near_cache.unacknowledged_ends</c>). A node serves copies
/// only while a heartbeat it sent within three intervals came back, and a heartbeat sent after the write's announcement
/// comes back after it. A node that has just (re)subscribed learns the nodes that were already serving from its channel
/// (the store's record of them) and from the heartbeats delivered before its own first one: its writes wait for that
/// heartbeat before choosing whom to wait for. So no node serves a value older than a write acknowledged anywhere, nor a
/// session whose end was acknowledged (assuming the nodes' clocks run at the same rate).</item>
/// <item>A served copy whose last access is due for a refresh (the store's touch interval) is refreshed off the
/// request's path: one load per session at a time, at most 64 at once, errors ignored.</item>
/// </list>
/// <para>Instruments: the <c>ClusterSession.NearCache</c> meter (hits, misses, invalidations, flushes, unacknowledged
/// ends, heartbeats, channel downs, entries, live nodes, usable).</para>
/// </remarks>
public sealed class NearCachedSessionStore : ISessionStore, INearCacheListener, IAsyncDisposable
{
    /// <summary>The version an invalidation carries when the session ended (deleted, revoked, moved to a new id).</summary>
    public const long Gone = NearCache.Gone;

    // A version any acknowledgement satisfies: the write's own is not known (a store that does not report it).
    private const long AnyVersion = long.MinValue;

    // The longest a write waits for a node's acknowledgement, in heartbeat intervals after the write returned: a node
    // serves only while a heartbeat it sent within 3 intervals came back; one more for clocks and scheduling.
    private const int LeaseIntervals = 4;

    // How many heartbeat intervals a node is counted live (waited for) after this node last heard its heartbeat. A node
    // serving at the time of a write had a heartbeat sent within 3 intervals come back before it, which this node hears
    // before the write's announcement; this node, while its own channel is proven, hears the announcement within about 3
    // intervals: 6 in all, and 10 leave room. The price: for this long after a node died, a write waits for it (at most
    // LeaseIntervals each).
    private const int LiveIntervals = 10;

    // Refreshes of last access running in the background at once, at most; past it a due refresh waits for a later hit.
    private const int MaxTouchesInFlight = 64;

    private readonly ISessionStore _inner;
    private readonly INearCacheChannel _channel;
    private readonly NearCache _cache;
    private readonly TimeProvider _time;
    private readonly long _intervalMs;
    private readonly ConcurrentDictionary<string, long> _peers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<PendingAcknowledgement>> _pending = new(StringComparer.Ordinal);

    // Writes whose ends are known only from their result (EndFoundAsync): the acknowledgements heard meanwhile, by key.
    private readonly List<AcknowledgementCollector> _collectors = [];

    // This node's saves in flight, per invalidation key: a change announced without its writer (Redis) that is heard
    // meanwhile may be the save's own, so its acknowledgement waits for the save's version (OwnSaveEnded).
    private readonly Dictionary<string, OwnSaves> _ownSaves = new(StringComparer.Ordinal);

    // The version of this node's last save of a session whose announcement had not been heard when the save returned:
    // heard later, it is not acknowledged (nobody waits for this node's acknowledgement of its own change).
    private readonly ConcurrentDictionary<string, long> _ownAnnounced = new(StringComparer.Ordinal);
    // From a (re)subscription until this node knows every node that may be serving copies: its first heartbeat since came
    // back (any other node's heartbeat sent later is delivered to this node), and then the channel listed the nodes the
    // store knows (those whose heartbeats went out earlier). A write waits for it before choosing whom to wait for.
    private Settling? _settling = new();
    private int _touchesInFlight;
    private int _disposed;
    private long _unacknowledgedEnds;
    private long _heartbeats;
    private long _channelDowns;

    /// <summary>Puts the near cache over <paramref name="inner"/>; it serves nothing until the channel's first heartbeat comes back.</summary>
    /// <param name="inner">The store; every miss, write and query goes to it.</param>
    /// <param name="channel">The store's invalidation channel; the layer attaches to it here.</param>
    /// <param name="options">The near-cache options (<see cref="NearCacheOptions.Validate"/>).</param>
    /// <param name="touchIntervalFraction">The store's <see cref="SessionStoreOptions.TouchIntervalFraction"/>: when a served copy's last access is refreshed.</param>
    /// <param name="timeProvider">The clock of ages and heartbeats. Default <see cref="TimeProvider.System"/>.</param>
    /// <param name="meterFactory">The application's meter factory; null: the layer owns its meter.</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public NearCachedSessionStore(ISessionStore inner, INearCacheChannel channel, NearCacheOptions options, double touchIntervalFraction = 0.1, TimeProvider? timeProvider = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is [var first, ..])
        {
            throw new ArgumentException(first, nameof(options));
        }

        _inner = inner;
        _channel = channel;
        _time = timeProvider ?? TimeProvider.System;
        _intervalMs = (long)Math.Max(1, options.HeartbeatInterval.TotalMilliseconds);
        _cache = new NearCache(options, touchIntervalFraction, _time, channel.SendHeartbeatAsync, channel.KeyOf, meterFactory);
        var meter = _cache.Metrics.Meter;
        UnacknowledgedEndsCounter = meter.CreateCounter<long>(
            "cluster_session.near_cache.unacknowledged_ends",
            "{end}",
            "Session ends (delete, revoke, cap, id change) that returned before every live node acknowledged the invalidation.");
        meter.CreateObservableGauge("cluster_session.near_cache.entries", () => _cache.Count, "{session}", "Sessions this node's near cache holds.");
        meter.CreateObservableGauge("cluster_session.near_cache.live_nodes", () => LiveNodeCount, "{node}", "Other nodes whose heartbeat this node heard within three intervals.");
        meter.CreateObservableGauge("cluster_session.near_cache.usable", () => IsUsable ? 1 : 0, "{state}", "1 while the near cache serves copies (its channel is proven), else 0.");
        meter.CreateObservableCounter("cluster_session.near_cache.heartbeats", () => Interlocked.Read(ref _heartbeats), "{heartbeat}", "This node's heartbeats that came back through the channel.");
        meter.CreateObservableCounter("cluster_session.near_cache.channel_downs", () => Interlocked.Read(ref _channelDowns), "{event}", "Times the channel reported that it may have missed a message.");
        channel.Attach(this);
    }

    /// <summary>The store under the layer.</summary>
    public ISessionStore Inner => _inner;

    /// <summary>Whether copies are served now: the channel is proven and its last heartbeat is recent.</summary>
    public bool IsUsable => _cache.IsUsable;

    /// <summary>How many sessions this node holds.</summary>
    public int Count => _cache.Count;

    /// <summary>How many other nodes this one counts as live (heard within three heartbeat intervals): the nodes an end waits for.</summary>
    public int LiveNodeCount => LivePeers().Count;

    /// <summary>How many ends returned before every live node acknowledged them.</summary>
    public long UnacknowledgedEnds => Interlocked.Read(ref _unacknowledgedEnds);

    /// <summary>How many of this node's heartbeats came back.</summary>
    public long HeartbeatsReceived => Interlocked.Read(ref _heartbeats);

    /// <summary>How many times the channel reported that it may have missed a message.</summary>
    public long ChannelDowns => Interlocked.Read(ref _channelDowns);

    private Counter<long> UnacknowledgedEndsCounter { get; }

    /// <summary>This node's copy of a session, when it would serve one now; loads nothing and counts no hit or miss.</summary>
    /// <param name="id">The session id.</param>
    public SessionSnapshot? PeekCopy(string id) => _cache.TryPeek(id);

    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
        => _inner.CreateAsync(session, cancellationToken);

    /// <inheritdoc />
    /// <remarks>A copy this node may serve is returned with no round trip; a miss loads through the store and caches what it read.</remarks>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return _inner.LoadAsync(id, cancellationToken);
        }

        _channel.DeliverReceived();
        if (_cache.TryGet(id, out var snapshot, out var touchDue))
        {
            if (touchDue)
            {
                TouchInBackground(id);
            }

            return new(snapshot);
        }

        return LoadAndCacheAsync(id, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks><see cref="SessionLoadOptions.NoTouch"/> goes to the store and is not cached (a served copy would start a background touch).</remarks>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
        => options == SessionLoadOptions.None ? LoadAsync(id, cancellationToken) : _inner.LoadAsync(id, options, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Returns once every live node applied the change (see the type's remarks); this node's copy becomes the saved state.</remarks>
    public async ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var key = _channel.KeyOf(changes.Id);
        var pending = BeginAcknowledged(key);
        _cache.BeginWrite(changes.Id);
        OwnSaveStarted(key);
        var mirrored = false;
        var saved = false;
        var version = AnyVersion;
        try
        {
            if (_inner is not IVersionedSessionStore versioned)
            {
                var result = await _inner.SaveAsync(changes, cancellationToken).ConfigureAwait(false);
                saved = result == SessionSaveResult.Saved;
                return result;
            }

            var outcome = await versioned.SaveWithVersionAsync(changes, cancellationToken).ConfigureAwait(false);
            if (outcome.Result == SessionSaveResult.Saved)
            {
                saved = true;
                version = outcome.Version;
                _cache.Saved(changes, outcome.Version);
                mirrored = true;
            }

            return outcome.Result;
        }
        finally
        {
            if (!mirrored)
            {
                // Gone, refused, failed (it may have landed) or not mirrorable: the copy must not outlive it.
                _cache.Remove(changes.Id);
            }

            _cache.EndWrite(changes.Id);

            // Before waiting for the others: a node saving the same session waits for this node's acknowledgement too.
            OwnSaveEnded(key, saved && version != AnyVersion ? version : null);
            if (pending is not null)
            {
                await CompleteAcknowledgedAsync(pending, saved, version, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Returns once every live node acknowledged the end (see the type's remarks).</remarks>
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return AcknowledgedAsync(
            _channel.KeyOf(id),
            (Store: _inner, Id: id),
            static async (s, token) =>
            {
                var deleted = await s.Store.DeleteAsync(s.Id, token).ConfigureAwait(false);
                return (deleted, deleted);
            },
            id,
            Gone,
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>The old id's end is acknowledged like a delete.</remarks>
    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
    {
        if (!SessionStoreContract.CheckChangeId(oldId, newId))
        {
            return new(false);
        }

        return AcknowledgedAsync(
            _channel.KeyOf(oldId),
            (Store: _inner, OldId: oldId, NewId: newId),
            static async (s, token) =>
            {
                var changed = await s.Store.ChangeIdAsync(s.OldId, s.NewId, token).ConfigureAwait(false);
                return (changed, changed);
            },
            oldId,
            Gone,
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>A change returns once every live node applied it, like a save.</remarks>
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
    {
        SessionId.ThrowIfMalformed(id);
        return AcknowledgedAsync(
            _channel.KeyOf(id),
            (Store: _inner, Id: id, Name: name, Expected: expected, Replacement: replacement),
            static async (s, token) =>
            {
                var result = await s.Store.CompareAndSetAttributeAsync(s.Id, s.Name, s.Expected, s.Replacement, token).ConfigureAwait(false);
                return (result, result.Status == AttributeCasStatus.Succeeded);
            },
            id,
            AnyVersion,
            cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
        => _inner.FindByPrincipalAsync(principal, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Goes to the store; the store's invalidation drops the copies (the store may acknowledge it with <see cref="EndAsync{T}"/>).</remarks>
    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
        => _inner.DeleteByHandleAsync(principal, handle, cancellationToken);

    /// <inheritdoc />
    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => _inner.CountAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
        => Forgetting(id, _inner.AdmitAsync(id, principal, maxSessions, policy, cancellationToken));

    /// <summary>
    /// Runs a write that ends the session whose invalidation key is <paramref name="key"/> and returns once every live
    /// node acknowledged the end, at most one heartbeat interval after the write returned (never throws for a missing
    /// acknowledgement). For ends a store makes outside the methods of this layer (an administrator's revocation by handle,
    /// a session cap evicting others). This node's copy goes, whatever the outcome.
    /// </summary>
    /// <typeparam name="T">The write's result.</typeparam>
    /// <param name="key">The session's invalidation key.</param>
    /// <param name="write">The write; returns its result and whether it announced the end (false: nothing to wait for).</param>
    /// <param name="cancellationToken">Cancels the write and the wait.</param>
    /// <returns>The write's result.</returns>
    public ValueTask<T> EndAsync<T>(string key, Func<CancellationToken, ValueTask<(T Result, bool Announced)>> write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        return AcknowledgedAsync(key, write, static (w, token) => w(token), id: null, Gone, cancellationToken);
    }

    /// <summary>
    /// Runs a write that ends sessions it finds itself, whose invalidation keys only its result names (a session cap that
    /// ends the oldest sessions in the statement that admits a new one), and returns once every live node acknowledged
    /// each of those ends, as <see cref="EndAsync{T}"/> does. Acknowledgements that arrive while the write is in flight
    /// count. This node's copies of the ended sessions go.
    /// </summary>
    /// <typeparam name="T">The write's result.</typeparam>
    /// <param name="write">The write; returns its result and the invalidation keys of the sessions it ended (and announced).</param>
    /// <param name="cancellationToken">Cancels the write and the wait.</param>
    /// <returns>The write's result.</returns>
    public async ValueTask<T> EndFoundAsync<T>(Func<CancellationToken, ValueTask<(T Result, IReadOnlyCollection<string> Ended)>> write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        var collector = new AcknowledgementCollector();
        lock (_pending)
        {
            _collectors.Add(collector);
        }

        var waits = new List<Task>();
        try
        {
            var (result, ended) = await write(cancellationToken).ConfigureAwait(false);
            foreach (var key in ended)
            {
                _cache.Invalidate(key, Gone);
                if (BeginAcknowledged(key) is { } pending)
                {
                    lock (_pending)
                    {
                        collector.SeedInto(key, pending);
                    }

                    waits.Add(CompleteAcknowledgedAsync(pending, announced: true, Gone, cancellationToken).AsTask());
                }
            }

            await Task.WhenAll(waits).ConfigureAwait(false);
            return result;
        }
        finally
        {
            lock (_pending)
            {
                _collectors.Remove(collector);
            }
        }
    }

    /// <summary>
    /// This node changed or ended the session whose invalidation key is <paramref name="key"/> (without going through this
    /// layer): drops its copy and keeps loads in flight from caching what they read.
    /// </summary>
    /// <param name="key">The session's invalidation key.</param>
    public void Forget(string key) => _cache.Invalidate(key, Gone);

    /// <inheritdoc />
    void INearCacheListener.OnInvalidation(string key, long version, string? writer)
    {
        _cache.Invalidate(key, version);
        HeardFor(key, version);
        if (string.Equals(writer, _channel.NodeId, StringComparison.Ordinal) || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        if (writer is null && version != Gone && IsOwnChange(key, version))
        {
            return;
        }

        _ = Quietly(_channel.AcknowledgeAsync(key, version, writer));
    }

    // A write of this node waits to hear its own announcement (HeardAsync): everything sent before it was delivered then.
    private void HeardFor(string key, long version)
    {
        PendingAcknowledgement[] writes;
        lock (_pending)
        {
            foreach (var collector in _collectors)
            {
                collector.Heard(key, version);
            }

            if (!_pending.TryGetValue(key, out var list))
            {
                return;
            }

            writes = [.. list];
        }

        foreach (var write in writes)
        {
            write.Heard(version);
        }
    }

    /// <inheritdoc />
    void INearCacheListener.OnHeartbeat(string node, long number)
    {
        if (string.Equals(node, _channel.NodeId, StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _heartbeats);
            if (_cache.HeartbeatReceived(number) && Volatile.Read(ref _settling) is { } settling && settling.TryStart())
            {
                _ = SettleAsync(settling);
            }
        }
        else
        {
            _peers[node] = Environment.TickCount64;
        }
    }

    /// <inheritdoc />
    void INearCacheListener.OnNodeLeft(string node) => _peers.TryRemove(node, out _);

    /// <inheritdoc />
    void INearCacheListener.OnAcknowledgement(string key, long version, string node)
    {
        PendingAcknowledgement[] waiting;
        lock (_pending)
        {
            foreach (var collector in _collectors)
            {
                collector.Add(key, version, node);
            }

            if (!_pending.TryGetValue(key, out var list))
            {
                return;
            }

            waiting = [.. list];
        }

        foreach (var write in waiting)
        {
            write.Acknowledged(node, version);
        }
    }

    /// <inheritdoc />
    void INearCacheListener.OnChannelDown()
    {
        Interlocked.Increment(ref _channelDowns);
        _cache.ChannelDown();
    }

    /// <inheritdoc />
    void INearCacheListener.OnSubscribed()
    {
        // Nodes whose heartbeats were sent while this node was not listening are known only from what the channel
        // reported before this call: writes wait until a heartbeat sent from now on came back (every other node's
        // heartbeat since is delivered before it).
        Interlocked.Exchange(ref _settling, new Settling())?.Release();
        _cache.ChannelDown();

        // The proof starts afresh, with a heartbeat now rather than at the next beat.
        if (Volatile.Read(ref _disposed) == 0)
        {
            _ = Quietly(_channel.SendHeartbeatAsync(_cache.NextHeartbeat()));
        }
    }

    /// <summary>Stops the heartbeats and empties the cache; the store under it is the caller's to dispose.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _cache.Dispose();
        }

        return default;
    }

    private async ValueTask<SessionSnapshot?> LoadAndCacheAsync(string id, CancellationToken cancellationToken)
    {
        // Registered before the round trip, so that an invalidation arriving while it is in flight keeps it out of the cache.
        var load = _cache.BeginLoad(id);

        // A load sent while the channel was not proven is not cached, even when a heartbeat proves the channel before the
        // reply comes back: a change made between the read and the resubscription was announced to nobody.
        var cacheable = _cache.IsUsable;
        SessionSnapshot? snapshot = null;
        try
        {
            snapshot = await _inner.LoadAsync(id, cancellationToken).ConfigureAwait(false);
            return snapshot;
        }
        finally
        {
            // Also on failure: the pending load must end (nothing is cached then). The node's clock stands in for the
            // store's: the copy lives at most MaxAge and never past the expiry the store reported.
            _cache.CompleteLoad(load, cacheable ? snapshot : null, _time.GetUtcNow());
        }
    }

    private void TouchInBackground(string id)
    {
        if (Volatile.Read(ref _disposed) != 0 || !_cache.TryBeginTouch(id))
        {
            return;
        }

        if (Interlocked.Increment(ref _touchesInFlight) > MaxTouchesInFlight)
        {
            Interlocked.Decrement(ref _touchesInFlight);
            _cache.EndTouch(id);
            return;
        }

        _ = TouchAsync(id);
    }

    private async Task TouchAsync(string id)
    {
        try
        {
            // Off the request's thread: the request was served from the copy already.
            await Task.Yield();
            var snapshot = await LoadAndCacheAsync(id, CancellationToken.None).ConfigureAwait(false);
            if (snapshot is null)
            {
                _cache.Remove(id);
            }
        }
#pragma warning disable CA1031 // A refresh that fails is tried again by a later hit (or the copy ages out); the request was served already.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            _cache.EndTouch(id);
            Interlocked.Decrement(ref _touchesInFlight);
        }
    }

    // A write of the session whose invalidation key is `key`: registered before it is sent (an acknowledgement may come
    // back before the write's reply), waited for after it returned when it announced a change.
    private async ValueTask<T> AcknowledgedAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, ValueTask<(T Result, bool Announced)>> write, string? id, long version, CancellationToken cancellationToken)
    {
        var pending = BeginAcknowledged(key);
        var announced = false;
        try
        {
            (var result, announced) = await write(state, cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            if (id is not null)
            {
                _cache.Remove(id);
            }
            else
            {
                _cache.Invalidate(key, Gone);
            }

            if (pending is not null)
            {
                await CompleteAcknowledgedAsync(pending, announced, version, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private PendingAcknowledgement? BeginAcknowledged(string key)
    {
        if (_peers.IsEmpty && Volatile.Read(ref _settling) is null && (_channel.DeliversBeforeWriteReturns || !_cache.IsUsable))
        {
            return null;
        }

        var write = new PendingAcknowledgement(key);
        lock (_pending)
        {
            if (!_pending.TryGetValue(key, out var list))
            {
                _pending[key] = list = [];
            }

            list.Add(write);
        }

        return write;
    }

    /// <summary>
    /// Waits until every live node acknowledged <paramref name="version"/> of the write (or a later one), or until a node
    /// that did not must have stopped serving copies: a node serves copies only while a heartbeat it sent within the last
    /// three intervals came back, and a heartbeat sent after the write returned (so after its announcement) comes back
    /// only after the announcement (the channel delivers in order), so four intervals after the write returned every
    /// node either applied it or serves nothing. Never throws for a missing acknowledgement (counted in
    /// <c>unacknowledged_ends</c>).
    /// </summary>
    private async ValueTask CompleteAcknowledgedAsync(PendingAcknowledgement write, bool announced, long version, CancellationToken token)
    {
        try
        {
            if (!announced)
            {
                return;
            }

            var deadline = Environment.TickCount64 + (LeaseIntervals * _intervalMs);
            try
            {
                // Just (re)subscribed: which nodes to wait for is known once this node's first heartbeat came back and the
                // channel listed the nodes the store knows.
                while (Volatile.Read(ref _settling) is { } settling)
                {
                    await settling.Done.WaitAsync(Remaining(deadline), token).ConfigureAwait(false);
                }

                // Whom to wait for is chosen once every heartbeat sent before the write's announcement was delivered: a
                // node that has just started announced itself before it cached anything. A channel whose writes return
                // before their announcement is delivered (Redis) is waited for until this node heard it.
                _channel.DeliverReceived();
                if (!_channel.DeliversBeforeWriteReturns && _cache.IsUsable)
                {
                    await write.HeardAsync(version).WaitAsync(Remaining(deadline), token).ConfigureAwait(false);
                }

                // A node whose own channel is not proven may have missed heartbeats and acknowledgements alike: it waits
                // for every node it heard recently, and most likely until the lease bound (the other nodes may be serving).
                var nodes = _cache.IsUsable ? LivePeers() : [.. _peers.Keys];
                if (write.Expect(nodes, version))
                {
                    await write.Done.WaitAsync(Remaining(deadline), token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                Interlocked.Increment(ref _unacknowledgedEnds);
                UnacknowledgedEndsCounter.Add(1);
            }
        }
        finally
        {
            lock (_pending)
            {
                if (_pending.TryGetValue(write.Key, out var list) && list.Remove(write) && list.Count == 0)
                {
                    _pending.Remove(write.Key);
                }
            }
        }
    }

    // The channel proved itself since the (re)subscription: the nodes whose heartbeats went out before it are the ones the
    // store knows; with them, this node knows every node that may serve. A failed listing is tried again at the next beat.
    private async Task SettleAsync(Settling settling)
    {
        try
        {
            foreach (var node in await _channel.ListNodesAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (!string.Equals(node, _channel.NodeId, StringComparison.Ordinal))
                {
                    _peers[node] = Environment.TickCount64;
                }
            }
        }
#pragma warning disable CA1031 // The store is unreachable: writes keep waiting (at most their lease) and the next heartbeat tries again.
        catch (Exception)
#pragma warning restore CA1031
        {
            settling.Retry();
            return;
        }

        if (Interlocked.CompareExchange(ref _settling, null, settling) == settling)
        {
            settling.Release();
        }
    }

    private static TimeSpan Remaining(long deadline) => TimeSpan.FromMilliseconds(Math.Max(1, deadline - Environment.TickCount64));

    private ValueTask<T> Forgetting<T>(string id, ValueTask<T> operation)
    {
        if (operation.IsCompletedSuccessfully)
        {
            _cache.Remove(id);
            return operation;
        }

        return ForgettingAsync(id, operation);
    }

    private async ValueTask<T> ForgettingAsync<T>(string id, ValueTask<T> operation)
    {
        try
        {
            return await operation.ConfigureAwait(false);
        }
        finally
        {
            _cache.Remove(id);
        }
    }

    // The other nodes heard from within LiveIntervals: those whose own lag check (3 intervals, from when their heartbeat
    // came back to them) may still let them serve copies, with 7 intervals to spare for this node hearing it late.
    private List<string> LivePeers()
    {
        var now = Environment.TickCount64;
        var live = new List<string>();
        foreach (var (node, seen) in _peers)
        {
            if (now - seen <= LiveIntervals * _intervalMs)
            {
                live.Add(node);
            }
            else if (now - seen > 30 * _intervalMs)
            {
                _peers.TryRemove(node, out _);
            }
        }

        return live;
    }

    // Entries of _ownAnnounced at most: past it the dictionary starts again (a few own acknowledgements go out, harmless).
    private const int MaxOwnAnnounced = 10_000;

    private void OwnSaveStarted(string key)
    {
        lock (_ownSaves)
        {
            if (!_ownSaves.TryGetValue(key, out var saves))
            {
                _ownSaves[key] = saves = new OwnSaves();
            }

            saves.Count++;
        }
    }

    // True when the change is (or may be) this node's own save: not acknowledged now. A change heard while a save of the
    // session is in flight is held until the save returns (OwnSaveEnded acknowledges it unless it was the save's own).
    private bool IsOwnChange(string key, long version)
    {
        lock (_ownSaves)
        {
            if (_ownSaves.TryGetValue(key, out var saves))
            {
                (saves.Heard ??= []).Add(version);
                return true;
            }
        }

        return _ownAnnounced.TryRemove(new KeyValuePair<string, long>(key, version));
    }

    // A save of the session returned (its version, or null when it did not save or did not say): acknowledges the
    // changes heard meanwhile that were not this node's own, and remembers own versions not heard yet.
    private void OwnSaveEnded(string key, long? version)
    {
        List<long>? acknowledge = null;
        lock (_ownSaves)
        {
            if (!_ownSaves.TryGetValue(key, out var saves))
            {
                return;
            }

            if (version is { } mine)
            {
                (saves.Mine ??= []).Add(mine);
            }

            if (--saves.Count > 0)
            {
                return;
            }

            _ownSaves.Remove(key);
            foreach (var heard in saves.Heard ?? [])
            {
                if (saves.Mine?.Remove(heard) != true)
                {
                    (acknowledge ??= []).Add(heard);
                }
            }

            foreach (var unheard in saves.Mine ?? [])
            {
                if (_ownAnnounced.Count >= MaxOwnAnnounced)
                {
                    _ownAnnounced.Clear();
                }

                _ownAnnounced[key] = unheard;
            }
        }

        if (acknowledge is not null && Volatile.Read(ref _disposed) == 0)
        {
            foreach (var heard in acknowledge)
            {
                _ = Quietly(_channel.AcknowledgeAsync(key, heard, writer: null));
            }
        }
    }

    /// <summary>The acknowledgements heard while a write of <see cref="EndFoundAsync{T}"/> was in flight. Guarded by <c>_pending</c>.</summary>
    private sealed class AcknowledgementCollector
    {
        private readonly Dictionary<string, List<(long Version, string? Node)>> _heard = new(StringComparer.Ordinal);

        /// <summary>Node <paramref name="node"/> acknowledged <paramref name="version"/> of the session.</summary>
        public void Add(string key, long version, string node) => Record(key, version, node);

        /// <summary>This node heard an invalidation of the session (the write's own announcement, as a rule).</summary>
        public void Heard(string key, long version) => Record(key, version, null);

        public void SeedInto(string key, PendingAcknowledgement pending)
        {
            foreach (var (version, node) in _heard.GetValueOrDefault(key) ?? [])
            {
                if (node is null)
                {
                    pending.Heard(version);
                }
                else
                {
                    pending.Acknowledged(node, version);
                }
            }
        }

        private void Record(string key, long version, string? node)
        {
            if (!_heard.TryGetValue(key, out var list))
            {
                _heard[key] = list = [];
            }

            list.Add((version, node));
        }
    }

    private sealed class Settling
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _started;

        /// <summary>Completes when this node knows its peers, or when a newer subscription replaced this one.</summary>
        public Task Done => _done.Task;

        public bool TryStart() => Interlocked.CompareExchange(ref _started, 1, 0) == 0;

        public void Retry() => Volatile.Write(ref _started, 0);

        public void Release() => _done.TrySetResult();
    }

    private sealed class OwnSaves
    {
        public int Count;
        public List<long>? Heard;
        public List<long>? Mine;
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A lost acknowledgement costs the writer one heartbeat interval, and the writer counts it.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>A write this node made, waiting for the other nodes' acknowledgements.</summary>
    private sealed class PendingAcknowledgement(string key)
    {
        private readonly Dictionary<string, long> _acknowledged = new(StringComparer.Ordinal);
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private HashSet<string>? _expected;
        private long _version;
        private bool _heardAny;
        private long _heardMax;
        private long _heardVersion;
        private TaskCompletionSource? _heardWaiter;

        public string Key { get; } = key;

        public Task Done => _done.Task;

        /// <summary>Sets the nodes to wait for and the version they must acknowledge; false when there is nothing to wait for.</summary>
        public bool Expect(List<string> nodes, long version)
        {
            lock (_acknowledged)
            {
                _version = version;
                _expected = [.. nodes];
                _expected.RemoveWhere(node => _acknowledged.TryGetValue(node, out var acknowledged) && acknowledged >= version);
                return _expected.Count > 0;
            }
        }

        /// <summary>This node heard an invalidation of the session (its own write's announcement, or a later change).</summary>
        public void Heard(long version)
        {
            lock (_acknowledged)
            {
                _heardMax = _heardAny ? Math.Max(_heardMax, version) : version;
                _heardAny = true;
                if (_heardWaiter is { } waiter && _heardMax >= _heardVersion)
                {
                    waiter.TrySetResult();
                }
            }
        }

        /// <summary>Completes once this node heard <paramref name="version"/> (or a later one; any with <c>AnyVersion</c>) of the session.</summary>
        public Task HeardAsync(long version)
        {
            lock (_acknowledged)
            {
                if (_heardAny && _heardMax >= version)
                {
                    return Task.CompletedTask;
                }

                _heardVersion = version;
                return (_heardWaiter ??= new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        public void Acknowledged(string node, long version)
        {
            lock (_acknowledged)
            {
                _acknowledged[node] = _acknowledged.TryGetValue(node, out var before) ? Math.Max(before, version) : version;
                if (_expected is not null && version >= _version && _expected.Remove(node) && _expected.Count == 0)
                {
                    _done.TrySetResult();
                }
            }
        }
    }
}
