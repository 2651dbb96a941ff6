using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// Sliding expiry for requests that carry a session id but never load or save the session (ASP.NET Core's
/// session refreshes on every such request): after the response, off the request's path, the session is
/// touched with one store load, which refreshes its expiry and creates nothing when the id is unknown.
/// Throttled per node: a session is touched at most once per <see cref="IntervalFraction"/> of its idle
/// timeout, counting this node's own loads and saves of it as touches; the throttle table is bounded.
/// </summary>
internal sealed class SessionToucher
{
    /// <summary>
    /// The throttle interval as a fraction of the idle timeout. Equal to the stores' default refresh fraction,
    /// so a touch is rarely a load that refreshes nothing; a session still outlives its idle timeout as long as
    /// its user keeps sending requests, since the interval plus the store's own refresh slack stays far below it.
    /// </summary>
    public const double IntervalFraction = 0.1;

    /// <summary>The most sessions the throttle table holds (about 64 bytes each).</summary>
    public const int DefaultCapacity = 100_000;

    /// <summary>The most touches in flight at once; a touch over this limit is dropped and retried by a later request.</summary>
    public const int MaxInFlight = 64;

    private readonly SessionRuntime _runtime;
    private readonly int _capacity;
    private readonly ConcurrentDictionary<IdKey, long> _dueTicks = new();
    private readonly Lock _pruneGate = new();
    private int _inFlight;

    public SessionToucher(SessionRuntime runtime, int capacity = DefaultCapacity)
    {
        _runtime = runtime;
        _capacity = capacity;
    }

    /// <summary>The number of touches running now (for tests).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The number of sessions in the throttle table (for tests).</summary>
    public int TrackedSessions => _dueTicks.Count;

    /// <summary>Records that this node just loaded or saved the session, which refreshed it as a touch would.</summary>
    public void RecordAccess(string id, TimeSpan idleTimeout)
    {
        if (IdKey.TryCreate(id, out var key))
        {
            EnsureRoom();
            _dueTicks[key] = DueAfter(NowTicks(), idleTimeout);
        }
    }

    /// <summary>
    /// Claims the touch of <paramref name="id"/> if it is due: true for exactly one caller per interval, however
    /// many requests of the session arrive at once.
    /// </summary>
    public bool TryClaim(string id)
    {
        if (!IdKey.TryCreate(id, out var key))
        {
            return false;
        }

        var now = NowTicks();
        var due = DueAfter(now, _runtime.Options.IdleTimeout);
        while (true)
        {
            if (_dueTicks.TryGetValue(key, out var current))
            {
                if (now < current)
                {
                    return false;
                }

                if (_dueTicks.TryUpdate(key, due, current))
                {
                    return true;
                }
            }
            else
            {
                EnsureRoom();
                if (_dueTicks.TryAdd(key, due))
                {
                    return true;
                }
            }
        }
    }

    /// <summary>Starts the claimed touch in the background; never throws and never waits for the store.</summary>
    public void StartTouch(string id)
    {
        if (Interlocked.Increment(ref _inFlight) > MaxInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            Release(id);
            return;
        }

        _ = TouchAsync(id);
    }

    /// <summary>Touches now and waits for it (the background work of <see cref="StartTouch"/>).</summary>
    internal async Task TouchAsync(string id)
    {
        try
        {
            // Bounded by StoreTimeout inside the runtime; nobody waits for the answer, so no request token.
            var snapshot = await _runtime.LoadAsync(id, deadline: null, CancellationToken.None).ConfigureAwait(false);
            if (snapshot is not null && IdKey.TryCreate(id, out var key))
            {
                // The session's own idle timeout may differ from the default the claim assumed.
                _dueTicks[key] = DueAfter(NowTicks(), snapshot.IdleTimeout);
            }
        }
        catch (Exception ex)
        {
            // Whatever the store threw: nobody awaits this task, so nothing may escape it.
            // The client has its response; the claim stays, so the next attempt comes one interval later, not with
            // every request of the session while the store is down.
            Log.TouchFailed(_runtime.Logger, ex.GetType().Name);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private void Release(string id)
    {
        if (IdKey.TryCreate(id, out var key))
        {
            _dueTicks.TryRemove(key, out _);
        }
    }

    private long NowTicks() => _runtime.Time.GetUtcNow().UtcTicks;

    private static long DueAfter(long nowTicks, TimeSpan idleTimeout) => nowTicks + (long)(idleTimeout.Ticks * IntervalFraction);

    /// <summary>
    /// Keeps the table within its capacity: drops entries whose time is up (they throttle nothing any more) and,
    /// when that frees less than half, everything, so the cost is amortised over the inserts that filled it. A
    /// dropped entry costs at most one extra touch of its session.
    /// </summary>
    private void EnsureRoom()
    {
        if (_dueTicks.Count < _capacity || !_pruneGate.TryEnter())
        {
            return;
        }

        try
        {
            if (_dueTicks.Count < _capacity)
            {
                return;
            }

            var now = NowTicks();
            foreach (var (key, due) in _dueTicks)
            {
                if (due <= now)
                {
                    _dueTicks.TryRemove(new KeyValuePair<IdKey, long>(key, due));
                }
            }

            if (_dueTicks.Count > _capacity / 2)
            {
                _dueTicks.Clear();
            }
        }
        finally
        {
            _pruneGate.Exit();
        }
    }

    /// <summary>The 24 bytes behind a well-formed id: an exact key that does not keep the id string alive.</summary>
    private readonly record struct IdKey(ulong A, ulong B, ulong C)
    {
        public static bool TryCreate(string id, out IdKey key)
        {
            Span<byte> bytes = stackalloc byte[SessionId.ByteLength];
            if (!SessionId.IsWellFormed(id) || Base64Url.DecodeFromChars(id, bytes) != SessionId.ByteLength)
            {
                key = default;
                return false;
            }

            var words = MemoryMarshal.Cast<byte, ulong>(bytes);
            key = new IdKey(words[0], words[1], words[2]);
            return true;
        }
    }
}
