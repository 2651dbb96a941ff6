using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// The Meter and ActivitySource of ClusterSession.AspNetCore, both named after the assembly so that
/// OpenTelemetry picks them up with <c>AddMeter("ClusterSession.AspNetCore")</c> / <c>AddSource(...)</c>.
/// </summary>
internal static class SessionDiagnostics
{
    public const string Name = "ClusterSession.AspNetCore";

    public const string OperationTag = "cluster_session.operation";

    public const string CircuitStateTag = "cluster_session.circuit.state";

    public const string PolicyTag = "cluster_session.policy";

    private static readonly string? Version = typeof(SessionDiagnostics).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource ActivitySource = new(Name, Version);

    public static readonly Meter Meter = new(Name, Version);

    public static readonly Counter<long> Loads = Meter.CreateCounter<long>(
        "cluster_session.loads", "{load}", "Sessions loaded from the store (hits).");

    public static readonly Counter<long> Misses = Meter.CreateCounter<long>(
        "cluster_session.misses", "{miss}", "Requests whose session id was unknown, expired or malformed.");

    public static readonly Counter<long> Saves = Meter.CreateCounter<long>(
        "cluster_session.saves", "{save}", "Sessions created or change sets saved.");

    public static readonly Counter<long> Conflicts = Meter.CreateCounter<long>(
        "cluster_session.conflicts", "{conflict}", "Saves that found the session gone and atomic updates that gave up.");

    public static readonly Counter<long> UnreadableAttributes = Meter.CreateCounter<long>(
        "cluster_session.attribute.unreadable", "{read}", "Typed reads of stored attributes that no longer deserialize as the requested type (attribute cluster_session.policy: treat_as_absent, end_session, throw).");

    public static readonly Counter<long> Failures = Meter.CreateCounter<long>(
        "cluster_session.store.failures", "{failure}", "Store calls that failed or timed out.");

    public static readonly Counter<long> FastFailures = Meter.CreateCounter<long>(
        "cluster_session.store.fast_failures", "{call}", "Store calls failed at once, without reaching the store, because the circuit was open.");

    public static readonly ObservableUpDownCounter<int> CircuitStates = Meter.CreateObservableUpDownCounter(
        "cluster_session.store.circuit.state", StoreCircuitBreaker.ObserveStates, "{circuit}",
        "Session store circuits by state (attribute cluster_session.circuit.state: closed, open, half_open): 1 for the state an application's circuit is in, 0 for the others.");

    public static readonly Histogram<double> StoreDuration = Meter.CreateHistogram(
        "cluster_session.store.duration", "s", "Duration of session store calls.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5] });
}
