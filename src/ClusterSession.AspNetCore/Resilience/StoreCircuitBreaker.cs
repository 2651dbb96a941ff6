using System.Diagnostics.Metrics;
using ClusterSession.AspNetCore.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Resilience;

/// <summary>The state of a <see cref="StoreCircuitBreaker"/>.</summary>
internal enum CircuitState
{
    /// <summary>Store calls go through.</summary>
    Closed,

    /// <summary>Store calls fail at once until the next try is due.</summary>
    Open,

    /// <summary>One call is trying the store; the others fail at once.</summary>
    HalfOpen,
}

/// <summary>What <see cref="StoreCircuitBreaker.Enter"/> allowed a store call to do.</summary>
internal enum CircuitPermit
{
    /// <summary>The breaker is off; nothing is recorded.</summary>
    Untracked,

    /// <summary>A normal call through a closed circuit.</summary>
    Call,

    /// <summary>The one call that tries a store known to be down.</summary>
    Probe,
}

/// <summary>
/// Fails store calls fast while the store is known to be down. Fed by <see cref="SessionRuntime"/> with the
/// outcome of every store call as it classified it, so a timeout counts as the outage it is (a decorator of
/// <see cref="ISessionStore"/> below the timeout would only see the call cancelled or abandoned).
/// Closed: calls go through; <see cref="StoreCircuitBreakerOptions.FailureThreshold"/> outages in a row open
/// the circuit. Open: calls throw <see cref="SessionStoreUnavailableException"/> with
/// <see cref="SessionStoreUnavailableException.RetryAfter"/> at once, without touching the store. After
/// <see cref="StoreCircuitBreakerOptions.BreakDuration"/> the next call becomes the single probe (half-open);
/// it closes the circuit when the store answers and reopens it for another break when not. Any call the store
/// answers closes the circuit. Time comes from the <see cref="TimeProvider"/>, so tests drive it with a fake clock.
/// </summary>
internal sealed class StoreCircuitBreaker : IDisposable
{
    public static readonly TimeSpan MinBreakDuration = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan MaxBreakDuration = TimeSpan.FromMinutes(10);

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SessionMetrics? _metrics;
    private readonly bool _enabled;
    private readonly int _threshold;
    private readonly TimeSpan _breakDuration;
    private readonly long _breakTicks;
    private readonly long _probeLeaseTicks;
    private volatile CircuitState _state;
    private int _failures;
    private long _nextProbe;
    private long _probeStarted;

    /// <param name="options">Threshold and break.</param>
    /// <param name="storeTimeout">How long a store call may take, so a probe that never reports back cannot hold the circuit.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Where state changes are logged.</param>
    /// <param name="metrics">The application's instruments; null: the circuit is not measured.</param>
    public StoreCircuitBreaker(StoreCircuitBreakerOptions options, TimeSpan storeTimeout, TimeProvider time, ILogger logger, SessionMetrics? metrics = null)
    {
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _enabled = options.Enabled;
        _threshold = options.FailureThreshold;
        _breakDuration = options.BreakDuration;
        _breakTicks = (long)(options.BreakDuration.TotalSeconds * time.TimestampFrequency);
        _probeLeaseTicks = _breakTicks + (long)(storeTimeout.TotalSeconds * time.TimestampFrequency);
        if (_enabled)
        {
            metrics?.Track(this);
        }
    }

    public CircuitState State => _state;

    public bool IsEnabled => _enabled;

    /// <summary>
    /// Called before a store call. Returns how the call is tracked, or throws
    /// <see cref="SessionStoreUnavailableException"/> (with a retry hint) when the circuit is open.
    /// </summary>
    public CircuitPermit Enter(string operation)
        => !_enabled ? CircuitPermit.Untracked
            : _state == CircuitState.Closed ? CircuitPermit.Call
            : EnterOpen(operation, mayProbe: true);

    /// <summary>
    /// For a call that will not reach the store (its request's deadline passed): while the circuit is open or a probe
    /// runs, throws the same fast failure as <see cref="Enter"/> (with a retry hint, counted as a fast failure), but
    /// never makes this call the probe. Returns when the circuit is closed or the breaker is off.
    /// </summary>
    public void ThrowIfOpen(string operation)
    {
        if (_enabled && _state != CircuitState.Closed)
        {
            EnterOpen(operation, mayProbe: false);
        }
    }

    /// <summary>
    /// Called when a store call ended: <paramref name="error"/> null when it succeeded, else what the caller
    /// will see. Only <see cref="SessionStoreUnavailableException"/> is an outage; a cancelled call, bad input
    /// or a limit (refused before the store is reached) tell nothing; anything else is the store answering.
    /// </summary>
    public void Report(CircuitPermit permit, Exception? error)
    {
        if (permit == CircuitPermit.Untracked)
        {
            return;
        }

        switch (error)
        {
            case SessionStoreUnavailableException:
                OnFailure(permit);
                break;
            case OperationCanceledException or ArgumentException or SessionLimitExceededException:
                OnNeutral(permit);
                break;
            default:
                OnAnswered();
                break;
        }
    }

    /// <summary>Formats a retry hint as the delta-seconds of an HTTP <c>Retry-After</c> header: whole seconds, rounded up, at least 1.</summary>
    public static string FormatRetryAfter(TimeSpan retryAfter)
        => Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The number of live circuits in each state, for the <c>cluster_session.store.circuit.state</c> metric.</summary>
    public static IEnumerable<Measurement<int>> ObserveStates(IEnumerable<StoreCircuitBreaker> circuits)
    {
        int closed = 0, open = 0, halfOpen = 0;
        foreach (var breaker in circuits)
        {
            switch (breaker._state)
            {
                case CircuitState.Closed:
                    closed++;
                    break;
                case CircuitState.Open:
                    open++;
                    break;
                default:
                    halfOpen++;
                    break;
            }
        }

        return
        [
            new(closed, new KeyValuePair<string, object?>(SessionDiagnostics.CircuitStateTag, "closed")),
            new(open, new KeyValuePair<string, object?>(SessionDiagnostics.CircuitStateTag, "open")),
            new(halfOpen, new KeyValuePair<string, object?>(SessionDiagnostics.CircuitStateTag, "half_open")),
        ];
    }

    public void Dispose() => _metrics?.Forget(this);

    private CircuitPermit EnterOpen(string operation, bool mayProbe)
    {
        TimeSpan retryAfter;
        var probe = false;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (_state == CircuitState.Closed)
            {
                return CircuitPermit.Call;
            }

            // The timeout layer ends every call, so a probe always reports back; should one ever not, it holds
            // the circuit for one store timeout and one break, not forever.
            if (mayProbe && ((_state == CircuitState.Open && now >= _nextProbe) || (_state == CircuitState.HalfOpen && now - _probeStarted >= _probeLeaseTicks)))
            {
                _state = CircuitState.HalfOpen;
                _probeStarted = now;
                probe = true;
                retryAfter = TimeSpan.Zero;
            }
            else
            {
                // While a probe runs its next try is already due; point the client one break ahead.
                retryAfter = now < _nextProbe ? _time.GetElapsedTime(now, _nextProbe) : _breakDuration;
            }
        }

        if (probe)
        {
            Log.CircuitProbing(_logger, operation);
            return CircuitPermit.Probe;
        }

        _metrics?.FastFailures.Add(1, new KeyValuePair<string, object?>(SessionDiagnostics.OperationTag, operation));
        throw new SessionStoreUnavailableException(
            $"The session store is unavailable: after {_threshold} store call(s) in a row failed, ClusterSession stopped calling it (circuit open) and failed this {operation} at once. It tries the store again within {retryAfter.TotalSeconds:0.#} s and resumes by itself when the store answers: retry then, and check the store.")
        {
            RetryAfter = retryAfter,
        };
    }

    private void OnFailure(CircuitPermit permit)
    {
        var opened = false;
        var probeFailed = false;
        lock (_lock)
        {
            if (permit == CircuitPermit.Probe && _state == CircuitState.HalfOpen)
            {
                _state = CircuitState.Open;
                _nextProbe = _time.GetTimestamp() + _breakTicks;
                probeFailed = true;
            }
            else if (_state == CircuitState.Closed && ++_failures >= _threshold)
            {
                // Failures of calls that started before the circuit opened arrive later; they neither extend the break nor count.
                _state = CircuitState.Open;
                _nextProbe = _time.GetTimestamp() + _breakTicks;
                opened = true;
            }
        }

        if (opened)
        {
            Log.CircuitOpened(_logger, _threshold, _breakDuration.TotalSeconds);
        }
        else if (probeFailed)
        {
            Log.CircuitProbeFailed(_logger, _breakDuration.TotalSeconds);
        }
    }

    private void OnNeutral(CircuitPermit permit)
    {
        if (permit != CircuitPermit.Probe)
        {
            return;
        }

        lock (_lock)
        {
            // The probe learned nothing (its request was cancelled): the next call tries again at once.
            if (_state == CircuitState.HalfOpen)
            {
                _state = CircuitState.Open;
            }
        }
    }

    private void OnAnswered()
    {
        if (_state == CircuitState.Closed && Volatile.Read(ref _failures) == 0)
        {
            return;
        }

        bool closed;
        lock (_lock)
        {
            closed = _state != CircuitState.Closed;
            _state = CircuitState.Closed;
            _failures = 0;
        }

        if (closed)
        {
            Log.CircuitClosed(_logger);
        }
    }
}
