using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;

namespace ClusterSession.AspNetCore.Diagnostics;

/// <summary>
/// The instruments of ClusterSession.AspNetCore, on the <c>ClusterSession.AspNetCore</c> meter: from the application's
/// <see cref="IMeterFactory"/> (which owns it) when there is one, otherwise a meter this object creates and disposes.
/// Instrument names and units follow OpenTelemetry's conventions and do not change.
/// </summary>
internal sealed class SessionMetrics : IDisposable
{
    // The circuits this application runs (one in an application; tests build more), for the state metric.
    private readonly ConcurrentDictionary<StoreCircuitBreaker, byte> _circuits = new();
    private readonly Meter? _owned;

    /// <param name="meterFactory">The application's meter factory, or null: then the meter is this object's.</param>
    public SessionMetrics(IMeterFactory? meterFactory)
    {
        Meter = meterFactory?.Create(SessionDiagnostics.Name, SessionDiagnostics.Version)
            ?? (_owned = new Meter(SessionDiagnostics.Name, SessionDiagnostics.Version));
        Loads = Meter.CreateCounter<long>("cluster_session.loads", "{load}", "Sessions loaded from the store (hits).");
        Misses = Meter.CreateCounter<long>("cluster_session.misses", "{miss}", "Requests whose session id was unknown, expired or malformed.");
        Saves = Meter.CreateCounter<long>("cluster_session.saves", "{save}", "Sessions created or change sets saved.");
        Conflicts = Meter.CreateCounter<long>("cluster_session.conflicts", "{conflict}", "Saves that found the session gone and atomic updates that gave up.");
        UnreadableAttributes = Meter.CreateCounter<long>(
            "cluster_session.attribute.unreadable", "{read}", "Typed reads of stored attributes that no longer deserialize as the requested type (attribute cluster_session.policy: treat_as_absent, end_session, throw).");
        Failures = Meter.CreateCounter<long>("cluster_session.store.failures", "{failure}", "Store calls that failed or timed out.");
        FastFailures = Meter.CreateCounter<long>(
            "cluster_session.store.fast_failures", "{call}", "Store calls failed at once, without reaching the store, because the circuit was open.");
        CircuitStates = Meter.CreateObservableUpDownCounter(
            "cluster_session.store.circuit.state", ObserveCircuits, "{circuit}",
            "Session store circuits by state (attribute cluster_session.circuit.state: closed, open, half_open): 1 for the state an application's circuit is in, 0 for the others.");
        StoreDuration = Meter.CreateHistogram(
            "cluster_session.store.duration", "s", "Duration of session store calls.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5] });
    }

    public Meter Meter { get; }

    public Counter<long> Loads { get; }

    public Counter<long> Misses { get; }

    public Counter<long> Saves { get; }

    public Counter<long> Conflicts { get; }

    public Counter<long> UnreadableAttributes { get; }

    public Counter<long> Failures { get; }

    public Counter<long> FastFailures { get; }

    public ObservableUpDownCounter<int> CircuitStates { get; }

    public Histogram<double> StoreDuration { get; }

    /// <summary>Counts <paramref name="circuit"/> in the state metric until <see cref="Forget"/>.</summary>
    public void Track(StoreCircuitBreaker circuit) => _circuits.TryAdd(circuit, 0);

    public void Forget(StoreCircuitBreaker circuit) => _circuits.TryRemove(circuit, out _);

    /// <summary>Disposes the meter if this object created it; a factory's meter is the factory's to dispose.</summary>
    public void Dispose() => _owned?.Dispose();

    private IEnumerable<Measurement<int>> ObserveCircuits() => StoreCircuitBreaker.ObserveStates(_circuits.Keys);
}
