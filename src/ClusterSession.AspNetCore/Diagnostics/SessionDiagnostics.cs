using System.Diagnostics;

namespace ClusterSession.AspNetCore.Diagnostics;

/// <summary>
/// The names of ClusterSession.AspNetCore's telemetry and its ActivitySource. The meter and ActivitySource are both
/// named after the assembly, so that OpenTelemetry picks them up with <c>AddClusterSessionInstrumentation()</c> (or
/// <c>AddMeter("ClusterSession.AspNetCore")</c> / <c>AddSource(...)</c>); the instruments are <see cref="SessionMetrics"/>,
/// one set per application, on a meter from its <see cref="System.Diagnostics.Metrics.IMeterFactory"/>.
/// </summary>
internal static class SessionDiagnostics
{
    public const string Name = "ClusterSession.AspNetCore";

    /// <summary>The store operation (<c>load</c>, <c>save</c>, ...), as before the semantic-convention names; kept for existing dashboards.</summary>
    public const string OperationTag = "cluster_session.operation";

    public const string CircuitStateTag = "cluster_session.circuit.state";

    public const string PolicyTag = "cluster_session.policy";

    /// <summary>OpenTelemetry's database system attribute: <c>redis</c>, <c>postgresql</c>, <c>other</c>.</summary>
    public const string DbSystemNameTag = "db.system.name";

    /// <summary>OpenTelemetry's database operation attribute: the store operation, as <see cref="OperationTag"/>.</summary>
    public const string DbOperationNameTag = "db.operation.name";

    public const string ServerAddressTag = "server.address";

    public const string ServerPortTag = "server.port";

    /// <summary>OpenTelemetry's error attribute, set on failure: <c>timeout</c>, or the exception's full type name.</summary>
    public const string ErrorTypeTag = "error.type";

    public static readonly string? Version = typeof(SessionDiagnostics).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource ActivitySource = new(Name, Version);
}
