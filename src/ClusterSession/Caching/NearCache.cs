using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace ClusterSession.Caching;

/// <summary>
/// One node's copies of sessions it has read from a shared store (<see cref="NearCacheOptions"/>): the engine of
/// <see cref="NearCachedSessionStore"/>, which feeds it what it learns: loads (<see cref="BeginLoad"/> before the round
/// trip, <see cref="CompleteLoad"/> after), its own writes (<see cref="Saved"/>, <see cref="Remove"/>), the
/// invalidations its channel delivers (<see cref="Invalidate"/>) and the state of that channel
/// (<see cref="ChannelDown"/>, heartbeats). Thread-safe.
/// </summary>
/// <remarks>
/// Correctness rests on four rules. (1) A copy is served only while the channel is proven working: after
/// <see cref="ChannelDown"/>, or when no heartbeat came back for three intervals, the cache is emptied and
/// bypassed until a heartbeat sent after that moment comes back. (2) A load that an invalidation of the same
/// session overtook (the change landed while the load was in flight) is not cached, and neither is one that
/// started before the channel last went down. (3) A copy lives at most <see cref="NearCacheOptions.MaxAge"/>
/// and never past the session's expiry as the store saw it at load time, measured on this node's monotonic
/// clock from the moment the load was sent (so a skewed wall clock cannot stretch it). (4) An invalidation
/// carries the version the change produced; a copy already at that version (this node's own write) is kept.
/// </remarks>
internal sealed class NearCache : IDisposable
{
    /// <summary>The version an invalidation carries when the session is gone (deleted, revoked, moved to a new id).</summary>
    public const long Gone = long.MaxValue;

    // Per session: the entry object, two dictionary slots and strings; a rough figure, the limit is approximate by design.
    private const int EntryOverhead = 256;

    // Heartbeats whose send time is remembered (by number, modulo this): one that comes back later proves nothing.
    private const int SentHeartbeats = 64;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PendingLoad.Tracker> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, OwnWrite> _ownWrites = new(StringComparer.Ordinal);
    private readonly Lock _pendingGate = new();
    private readonly Lock _evictionGate = new();
    private readonly TimeProvider _time;
    private readonly long _sizeLimit;
    private readonly long _maxAgeTicks;
    private readonly long _heartbeatLagTicks;
    private readonly double _touchFraction;
    private readonly Func<long, Task>? _sendHeartbeat;
    private readonly Func<string, string>? _invalidationKey;
    private readonly ITimer? _heartbeatTimer;
    private readonly (long Number, long SentAt)[] _sent = new (long, long)[SentHeartbeats];
    private readonly Lock _heartbeatGate = new();
    private long _size;
    private long _epoch;
    private long _heartbeatSent;
    private long _firstUsableHeartbeat = 1;
    private long _lastHeartbeatAt;
    private volatile bool _usable;
    private bool _disposed;

    /// <summary>Creates the cache; it serves nothing until the first heartbeat comes back.</summary>
    /// <param name="options">The near-cache options (validated by the store's options).</param>
    /// <param name="touchIntervalFraction">The store's <see cref="SessionStoreOptions.TouchIntervalFraction"/>.</param>
    /// <param name="time">The clock; its timestamps measure ages and its timers send heartbeats.</param>
    /// <param name="sendHeartbeat">
    /// Sends heartbeat number N through the store so that this node's channel delivers it back
    /// (the store calls <see cref="HeartbeatReceived"/> with N). Null: the store drives heartbeats itself.
    /// </param>
    /// <param name="invalidationKey">
    /// The one-way digest of a session id that the store's invalidation messages carry instead of the id (a session id
    /// is a bearer credential: whoever can listen to the channel must not learn it). Null: messages carry the id itself.
    /// </param>
    /// <param name="meterFactory">The application's meter factory; null (a store built without DI): the cache owns its meter.</param>
    public NearCache(NearCacheOptions options, double touchIntervalFraction, TimeProvider time, Func<long, Task>? sendHeartbeat, Func<string, string>? invalidationKey = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _sizeLimit = options.SizeLimit;
        _maxAgeTicks = Ticks(options.MaxAge);
        _heartbeatLagTicks = 3 * Ticks(options.HeartbeatInterval);
        _touchFraction = touchIntervalFraction;
        _sendHeartbeat = sendHeartbeat;
        _invalidationKey = invalidationKey;
        Metrics = new NearCacheMetrics(meterFactory);
        if (sendHeartbeat is not null)
        {
            _heartbeatTimer = time.CreateTimer(static state => ((NearCache)state!).Beat(), this, TimeSpan.Zero, options.HeartbeatInterval);
        }
    }

    /// <summary>The cache's instruments (the Redis store adds one to their meter).</summary>
    public NearCacheMetrics Metrics { get; }

    /// <summary>Whether copies are served now: the channel is subscribed and its last heartbeat is recent.</summary>
    public bool IsUsable
    {
        get
        {
            if (!_usable)
            {
                return false;
            }

            if (Elapsed(Volatile.Read(ref _lastHeartbeatAt)) <= _heartbeatLagTicks)
            {
                return true;
            }

            // The channel went quiet: it may have stopped delivering without the connection noticing.
            ChannelDown();
            return false;
        }
    }

    /// <summary>The approximate bytes the cached sessions take.</summary>
    public long Size => Interlocked.Read(ref _size);

    /// <summary>The number of cached sessions.</summary>
    public int Count => _entries.Count;

    /// <summary>This node's copy of the session when one may be served now; counts nothing, starts nothing.</summary>
    public SessionSnapshot? TryPeek(string id)
    {
        var key = KeyOf(id);
        return IsUsable && _entries.TryGetValue(key, out var entry) && _time.GetTimestamp() < entry.ExpiresAt
            && !(_ownWrites.TryGetValue(key, out var write) && Volatile.Read(ref write.Seen) > entry.Snapshot.Version)
            ? entry.Snapshot
            : null;
    }

    /// <summary>
    /// This node starts a write of the session (call <see cref="EndWrite"/> when it returned, after
    /// <see cref="Saved"/> or <see cref="Remove"/>). Until then an invalidation of the session with a version does not
    /// drop the copy (it may be this write's own announcement, which can arrive before the write's reply): the
    /// highest such version is kept, the copy is not served while it is newer than the copy, and the write's outcome
    /// decides (<see cref="Saved"/> keeps the copy only when no other change came in between).
    /// </summary>
    public void BeginWrite(string id)
    {
        var key = KeyOf(id);
        lock (_pendingGate)
        {
            if (!_ownWrites.TryGetValue(key, out var write))
            {
                _ownWrites[key] = write = new OwnWrite();
            }

            write.Count++;
        }
    }

    /// <summary>Ends a write begun with <see cref="BeginWrite"/>: a copy older than a change heard meanwhile goes.</summary>
    public void EndWrite(string id)
    {
        var key = KeyOf(id);
        long seen;
        lock (_pendingGate)
        {
            if (!_ownWrites.TryGetValue(key, out var write))
            {
                return;
            }

            seen = write.Seen;
            if (--write.Count == 0)
            {
                _ownWrites.TryRemove(key, out _);
            }
        }

        if (DropOlderThan(key, seen))
        {
            Metrics.Invalidations.Add(1);
        }
    }

    /// <summary>
    /// Returns this node's copy of the session when one may be served. <paramref name="touchDue"/> is true
    /// when the store should refresh the session's last access (off the request's path; see
    /// <see cref="TryBeginTouch"/>).
    /// </summary>
    public bool TryGet(string id, out SessionSnapshot snapshot, out bool touchDue)
    {
        touchDue = false;
        var key = KeyOf(id);
        if (!IsUsable || !_entries.TryGetValue(key, out var entry))
        {
            snapshot = null!;
            Metrics.Misses.Add(1);
            return false;
        }

        var now = _time.GetTimestamp();
        if (now >= entry.ExpiresAt)
        {
            Drop(key, entry);
            snapshot = null!;
            Metrics.Misses.Add(1);
            return false;
        }

        if (!_ownWrites.IsEmpty && _ownWrites.TryGetValue(key, out var write) && Volatile.Read(ref write.Seen) > entry.Snapshot.Version)
        {
            // Another change landed while this node's own write is in flight: the copy waits for that write to decide.
            snapshot = null!;
            Metrics.Misses.Add(1);
            return false;
        }

        entry.LastUsed = now;
        touchDue = now - entry.AccessedAt >= entry.TouchAfterTicks && Volatile.Read(ref entry.Touching) == 0;
        snapshot = entry.Snapshot;
        Metrics.Hits.Add(1);
        return true;
    }

    /// <summary>
    /// Claims the refresh of a cached session's last access, so that only one runs at a time per session
    /// on this node. False when another is running or the session is not cached.
    /// </summary>
    public bool TryBeginTouch(string id)
        => _entries.TryGetValue(KeyOf(id), out var entry) && Interlocked.CompareExchange(ref entry.Touching, 1, 0) == 0;

    /// <summary>
    /// Ends a refresh claimed with <see cref="TryBeginTouch"/>. The store's load touched the session, so the
    /// caller passes the load's outcome to <see cref="CompleteLoad"/> first; this only releases the claim.
    /// </summary>
    public void EndTouch(string id)
    {
        if (_entries.TryGetValue(KeyOf(id), out var entry))
        {
            Volatile.Write(ref entry.Touching, 0);
        }
    }

    /// <summary>Call before a load's round trip; pass the result to <see cref="CompleteLoad"/>.</summary>
    public PendingLoad BeginLoad(string id)
    {
        var key = KeyOf(id);
        var startedAt = _time.GetTimestamp();
        var epoch = Interlocked.Read(ref _epoch);
        lock (_pendingGate)
        {
            if (!_pending.TryGetValue(key, out var track))
            {
                track = new PendingLoad.Tracker();
                _pending[key] = track;
            }

            track.Users++;
            return new PendingLoad(key, startedAt, epoch, track);
        }
    }

    /// <summary>
    /// Caches what a load returned unless the load was overtaken by an invalidation of the session or by the
    /// channel going down. <paramref name="storeNow"/> is the store's clock at the load (the node's when the
    /// store does not say): with the snapshot's expiry it gives the time the copy may live.
    /// </summary>
    public void CompleteLoad(PendingLoad load, SessionSnapshot? snapshot, DateTimeOffset storeNow)
    {
        ArgumentNullException.ThrowIfNull(load);
        var entry = snapshot is null ? null : NewEntry(load, snapshot, storeNow);
        lock (_pendingGate)
        {
            var stale = load.Track.Stale;
            if (--load.Track.Users == 0 && _pending.TryGetValue(load.Key, out var current) && ReferenceEquals(current, load.Track))
            {
                _pending.Remove(load.Key);
            }

            // Under the lock: an invalidation either marked this load stale before, or finds the copy after and drops it.
            if (entry is null || stale || !_usable || Interlocked.Read(ref _epoch) != load.Epoch)
            {
                return;
            }

            Store(load.Key, entry);
        }

        if (Interlocked.Read(ref _size) > _sizeLimit)
        {
            Evict();
        }
    }

    /// <summary>
    /// This node saved <paramref name="changes"/> and the store answered with <paramref name="newVersion"/>:
    /// the cached copy becomes the new state when it was the version just before, else it is dropped
    /// (another node's change landed in between and its invalidation is on its way).
    /// </summary>
    public void Saved(SessionChanges changes, long newVersion)
    {
        ArgumentNullException.ThrowIfNull(changes);

        // A load of this session in flight may have read the state before this save: it must not be cached.
        var key = KeyOf(changes.Id);
        MarkPendingStale(key);
        if (!_entries.TryGetValue(key, out var entry))
        {
            return;
        }

        // A change after this one was heard while the save was in flight: the copy cannot become the latest state.
        var seen = _ownWrites.TryGetValue(key, out var write) ? Volatile.Read(ref write.Seen) : -1;
        if (entry.Snapshot.Version != newVersion - 1 || !_usable || seen > newVersion)
        {
            // Not only this entry: another save of this node may have mirrored itself in it meanwhile, older than this one.
            DropOlderThan(key, _usable ? Math.Max(newVersion, seen) : Gone);
            return;
        }

        var old = entry.Snapshot;
        var attributes = new Dictionary<string, byte[]>(old.Attributes.Count + changes.Set.Count, StringComparer.Ordinal);
        foreach (var (name, value) in old.Attributes)
        {
            attributes[name] = value;
        }

        foreach (var name in changes.Removed)
        {
            attributes.Remove(name);
        }

        foreach (var (name, value) in changes.Set)
        {
            attributes[name] = value;
        }

        var now = _time.GetTimestamp();
        var idle = changes.IdleTimeout ?? old.IdleTimeout;
        var wallNow = _time.GetUtcNow();
        var snapshot = new SessionSnapshot(
            old.Id,
            old.Handle,
            old.CreatedAt,
            wallNow,
            idle,
            old.AbsoluteExpiresAt,
            changes.PrincipalChanged ? changes.Principal : old.Principal,
            newVersion,
            attributes);

        // A save refreshes the last access on the store; the copy may live no longer than before
        // (its maximum age counts from the load) nor past the new idle expiry.
        var updated = new Entry(
            snapshot,
            expiresAt: Math.Min(entry.ExpiresAt, now + Ticks(idle)),
            accessedAt: now,
            touchAfterTicks: Ticks(idle * _touchFraction),
            size: SizeOf(snapshot));
        if (_entries.TryUpdate(key, updated, entry))
        {
            Interlocked.Add(ref _size, updated.Size - entry.Size);
            if (Interlocked.Read(ref _size) > _sizeLimit)
            {
                Evict();
            }
        }
    }

    /// <summary>This node changed or ended the session in a way it does not mirror: drops its copy.</summary>
    public void Remove(string id)
    {
        var key = KeyOf(id);
        MarkPendingStale(key);
        DropOlderThan(key, Gone);
    }

    /// <summary>
    /// The channel delivered a change to <paramref name="version"/> (<see cref="Gone"/> when it ended) of the session
    /// whose <see cref="KeyOf">invalidation key</see> is <paramref name="key"/>. Drops an older copy and keeps loads
    /// in flight from caching what they read.
    /// </summary>
    public void Invalidate(string key, long version)
    {
        MarkPendingStale(key);
        if (version != Gone && !_ownWrites.IsEmpty && DeferToOwnWrite(key, version))
        {
            return;
        }

        if (DropOlderThan(key, version))
        {
            Metrics.Invalidations.Add(1);
        }
    }

    /// <summary>
    /// The invalidation channel is down, resubscribing or may have missed messages: empties the cache and
    /// serves nothing until a heartbeat sent after this moment comes back.
    /// </summary>
    public void ChannelDown()
    {
        _usable = false;
        Interlocked.Increment(ref _epoch);
        Interlocked.Exchange(ref _firstUsableHeartbeat, Interlocked.Read(ref _heartbeatSent) + 1);
        lock (_pendingGate)
        {
            foreach (var pending in _pending.Values)
            {
                pending.Stale = true;
            }

            _pending.Clear();
        }

        if (!_entries.IsEmpty)
        {
            Metrics.Flushes.Add(1);
        }

        _entries.Clear();
        Interlocked.Exchange(ref _size, 0);
    }

    /// <summary>The key that stands for the session in invalidation messages (and in this cache).</summary>
    public string KeyOf(string id) => _invalidationKey is null ? id : _invalidationKey(id);

    /// <summary>
    /// Numbers the next heartbeat and remembers when it was sent; the store sends it through the channel and reports it
    /// back with <see cref="HeartbeatReceived"/>.
    /// </summary>
    public long NextHeartbeat()
    {
        lock (_heartbeatGate)
        {
            var number = Interlocked.Increment(ref _heartbeatSent);
            _sent[(int)(number % SentHeartbeats)] = (number, _time.GetTimestamp());
            return number;
        }
    }

    /// <summary>
    /// Heartbeat <paramref name="number"/> came back through the channel: every message sent before it was delivered.
    /// Turns the cache on when the heartbeat was sent after the channel last went down. The proof dates from when the
    /// heartbeat was <em>sent</em>, not from when it came back: a channel running late delivers old heartbeats on time,
    /// and a copy is served only while a heartbeat sent within three intervals came back.
    /// </summary>
    /// <returns>Whether the heartbeat proved the channel (false: sent before the channel last went down, or unknown).</returns>
    public bool HeartbeatReceived(long number)
    {
        if (number < Interlocked.Read(ref _firstUsableHeartbeat))
        {
            return false;
        }

        lock (_heartbeatGate)
        {
            var (sentNumber, sentAt) = _sent[(int)(number % SentHeartbeats)];
            if (sentNumber != number)
            {
                return false;
            }

            if (sentAt > _lastHeartbeatAt)
            {
                Volatile.Write(ref _lastHeartbeatAt, sentAt);
            }
        }

        _usable = true;
        return true;
    }

    /// <summary>Stops the heartbeats and empties the cache.</summary>
    public void Dispose()
    {
        _disposed = true;
        _heartbeatTimer?.Dispose();
        _usable = false;
        _entries.Clear();
        Metrics.Dispose();
    }

    private void Beat()
    {
        if (_disposed || _sendHeartbeat is null)
        {
            return;
        }

        // Checking the lag here too turns a silent channel off even when no request asks.
        _ = IsUsable;
        var number = NextHeartbeat();
        _ = SendQuietly(_sendHeartbeat, number);

        static async Task SendQuietly(Func<long, Task> send, long number)
        {
            try
            {
                await send(number).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A heartbeat that cannot be sent is what the lag check detects; nothing else to do with the error.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private Entry? NewEntry(PendingLoad load, SessionSnapshot snapshot, DateTimeOffset storeNow)
    {
        var lifetime = snapshot.ExpiresAt - storeNow;
        if (lifetime <= TimeSpan.Zero)
        {
            return null;
        }

        var accessAge = storeNow - snapshot.LastAccessedAt;
        return new Entry(
            snapshot,
            expiresAt: load.StartedAt + Math.Min(_maxAgeTicks, Ticks(lifetime)),
            accessedAt: load.StartedAt - Math.Max(0, Ticks(accessAge)),
            touchAfterTicks: Ticks(snapshot.IdleTimeout * _touchFraction),
            size: SizeOf(snapshot));
    }

    private void Store(string key, Entry entry)
    {
        var previous = _entries.GetOrAdd(key, entry);
        if (ReferenceEquals(previous, entry))
        {
            Interlocked.Add(ref _size, entry.Size);
        }
        else if (previous.Snapshot.Version <= entry.Snapshot.Version && _entries.TryUpdate(key, entry, previous))
        {
            Interlocked.Add(ref _size, entry.Size - previous.Size);
        }
    }

    private void Drop(string key, Entry entry)
    {
        if (_entries.TryRemove(new KeyValuePair<string, Entry>(key, entry)))
        {
            Interlocked.Add(ref _size, -entry.Size);
        }
    }

    // Drops the session's copy while it is older than `version` (Gone: whatever its version); true when one went. A loop, not
    // one conditional removal: a save of this node mirrored at the same moment (Saved) replaces the entry between the read
    // and the removal, and without another look that newer copy of a session just ended or changed would stay.
    private bool DropOlderThan(string key, long version)
    {
        var dropped = false;
        while (_entries.TryGetValue(key, out var entry) && entry.Snapshot.Version < version)
        {
            if (_entries.TryRemove(new KeyValuePair<string, Entry>(key, entry)))
            {
                Interlocked.Add(ref _size, -entry.Size);
                dropped = true;
            }
        }

        return dropped;
    }

    // This node's write of the session is in flight: the version is noted and the write's outcome decides (EndWrite).
    private bool DeferToOwnWrite(string key, long version)
    {
        lock (_pendingGate)
        {
            if (!_ownWrites.TryGetValue(key, out var write))
            {
                return false;
            }

            if (version > write.Seen)
            {
                Volatile.Write(ref write.Seen, version);
            }

            return true;
        }
    }

    private void MarkPendingStale(string key)
    {
        lock (_pendingGate)
        {
            if (_pending.Remove(key, out var pending))
            {
                pending.Stale = true;
            }
        }
    }

    // Drops expired copies, then the least recently used until the cache is at three quarters of its limit;
    // one thread at a time, the others carry on (the limit is a bound, not an exact figure).
    private void Evict()
    {
        if (!_evictionGate.TryEnter())
        {
            return;
        }

        try
        {
            var now = _time.GetTimestamp();
            var live = new List<KeyValuePair<string, Entry>>(_entries.Count);
            foreach (var pair in _entries)
            {
                if (now >= pair.Value.ExpiresAt)
                {
                    Drop(pair.Key, pair.Value);
                }
                else
                {
                    live.Add(pair);
                }
            }

            var target = _sizeLimit / 4 * 3;
            if (Interlocked.Read(ref _size) <= target)
            {
                return;
            }

            live.Sort(static (a, b) => a.Value.LastUsed.CompareTo(b.Value.LastUsed));
            foreach (var pair in live)
            {
                if (Interlocked.Read(ref _size) <= target)
                {
                    break;
                }

                Drop(pair.Key, pair.Value);
            }
        }
        finally
        {
            _evictionGate.Exit();
        }
    }

    private long Elapsed(long since) => _time.GetTimestamp() - since;

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private static long SizeOf(SessionSnapshot snapshot)
    {
        long size = EntryOverhead + (2 * (SessionId.Length + (snapshot.Principal?.Length ?? 0)));
        foreach (var (name, value) in snapshot.Attributes)
        {
            size += 48 + (2 * name.Length) + value.Length;
        }

        return size;
    }

    private sealed class OwnWrite
    {
        public int Count;

        public long Seen = -1;
    }

    private sealed class Entry(SessionSnapshot snapshot, long expiresAt, long accessedAt, long touchAfterTicks, long size)
    {
        public int Touching;

        public long LastUsed = accessedAt;

        public SessionSnapshot Snapshot { get; } = snapshot;

        public long ExpiresAt { get; } = expiresAt;

        public long AccessedAt { get; } = accessedAt;

        public long TouchAfterTicks { get; } = touchAfterTicks;

        public long Size { get; } = size;
    }
}

/// <summary>A load in flight, from <see cref="NearCache.BeginLoad"/> to <see cref="NearCache.CompleteLoad"/>.</summary>
internal sealed class PendingLoad
{
    internal PendingLoad(string key, long startedAt, long epoch, Tracker track)
    {
        Key = key;
        StartedAt = startedAt;
        Epoch = epoch;
        Track = track;
    }

    /// <summary>The session's invalidation key.</summary>
    internal string Key { get; }

    internal long StartedAt { get; }

    internal long Epoch { get; }

    internal Tracker Track { get; }

    /// <summary>Shared by the loads of one session in flight together: an invalidation marks them all.</summary>
    internal sealed class Tracker
    {
        public int Users;

        public bool Stale;
    }
}
