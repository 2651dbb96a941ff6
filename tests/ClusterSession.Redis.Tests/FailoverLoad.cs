using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// The load of the failover tests (Sentinel and Redis Cluster): writers that save distinct attributes through several
/// store instances and record every outcome, so a run can count failures, recovery and acknowledged-then-lost writes.
/// </summary>
internal static class FailoverLoad
{
    /// <summary>Distinct attributes, reused every this many writes, so a session stays under the attribute limit.</summary>
    private const int Keys = 200;

    /// <summary>The bound on writes per writer; the tests also stop by time.</summary>
    private const int MaxWritesPerWriter = 20_000;

    public static async Task WriteAsync(int writer, RedisSessionStore[] stores, string id, FailoverRun run, Stopwatch clock, CancellationToken stop)
    {
        for (var i = 0; i < MaxWritesPerWriter && !stop.IsCancellationRequested; i++)
        {
            // Distinct attributes, reused every Keys writes so a session stays under the attribute limit.
            var name = string.Create(CultureInfo.InvariantCulture, $"w{writer}-{i % Keys}");
            var store = stores[(writer + i) % stores.Length];
            var started = clock.Elapsed;
            try
            {
                var result = await store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { [name] = BitConverter.GetBytes((long)i) }), CancellationToken.None);
                run.Record(writer, started, clock.Elapsed, result == SessionSaveResult.Saved ? Outcome.Ok : Outcome.Gone, name, i, null);
            }
            catch (SessionStoreUnavailableException ex)
            {
                run.Record(writer, started, clock.Elapsed, Outcome.Unavailable, name, i, ex.Message);
                await Task.Delay(20, CancellationToken.None);
            }
#pragma warning disable CA1031 // Counted and asserted on: any other exception fails the test.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                run.Record(writer, started, clock.Elapsed, Outcome.Other, name, i, ex.GetType().Name + ": " + ex.Message);
            }
        }
    }
}

/// <summary>How one write of a failover run ended.</summary>
internal enum Outcome
{
    Ok,
    Unavailable,
    Gone,
    Other,
}

/// <summary>What the writers of a failover run saw: outcomes, acknowledged values, failures and recovery times.</summary>
internal sealed class FailoverRun(int writers)
{
    private readonly Lock _lock = new();
    private readonly TimeSpan?[] _lastOk = new TimeSpan?[writers];
    private readonly TimeSpan?[] _firstOkAfterFault = new TimeSpan?[writers];
    private TimeSpan? _faultAt;
    private int _ok;
    private int _unavailable;
    private int _gone;
    private int _other;

    /// <summary>Per writer: attribute name to the last acknowledged value.</summary>
    public Dictionary<string, long>[] Acknowledged { get; } = Enumerable.Range(0, writers).Select(_ => new Dictionary<string, long>(StringComparer.Ordinal)).ToArray();

    public ConcurrentQueue<string> Messages { get; } = new();

    /// <summary>When the fault was injected; set just before it.</summary>
    public TimeSpan? FaultAt
    {
        get
        {
            lock (_lock)
            {
                return _faultAt;
            }
        }

        set
        {
            lock (_lock)
            {
                _faultAt = value;
            }
        }
    }

    public TimeSpan? LastFailure { get; private set; }

    public TimeSpan Slowest { get; private set; }

    public int Ok => _ok;

    public int Unavailable => _unavailable;

    public int Gone => _gone;

    public int Other => _other;

    public int Total => _ok + _unavailable + _gone + _other;

    public void Record(int writer, TimeSpan started, TimeSpan ended, Outcome outcome, string name, long value, string? message)
    {
        lock (_lock)
        {
            Slowest = ended - started > Slowest ? ended - started : Slowest;
            switch (outcome)
            {
                case Outcome.Ok:
                    _ok++;
                    _lastOk[writer] = ended;
                    Acknowledged[writer][name] = value;
                    if (_faultAt is { } fault && started > fault && _firstOkAfterFault[writer] is null)
                    {
                        _firstOkAfterFault[writer] = ended;
                    }

                    break;
                case Outcome.Unavailable:
                    _unavailable++;
                    LastFailure = ended;
                    break;
                case Outcome.Gone:
                    _gone++;
                    LastFailure = ended;
                    break;
                default:
                    _other++;
                    LastFailure = ended;
                    break;
            }
        }

        if (message is not null && Messages.Count < 5000)
        {
            Messages.Enqueue(message);
        }
    }

    /// <summary>The first success of any of <paramref name="writers"/> for a request started after the fault.</summary>
    public TimeSpan? FirstOkAfterFault(IEnumerable<int> writers)
    {
        lock (_lock)
        {
            return writers.Select(w => _firstOkAfterFault[w]).Where(t => t is not null).Min();
        }
    }

    /// <summary>Every writer has succeeded after the last failure (or, with no failure at all, 3 s after the fault).</summary>
    public bool RecoveredSince(TimeSpan faultAt, TimeSpan now)
    {
        lock (_lock)
        {
            var since = LastFailure is { } last && last > faultAt ? last : faultAt + TimeSpan.FromSeconds(3);
            if (now < since)
            {
                return false;
            }

            for (var w = 0; w < writers; w++)
            {
                if (_lastOk[w] is not { } ok || ok <= since)
                {
                    return false;
                }
            }

            return true;
        }
    }
}
