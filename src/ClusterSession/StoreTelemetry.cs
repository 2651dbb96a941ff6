namespace ClusterSession;

/// <summary>
/// What a store tells the instrumentation about itself, for the OpenTelemetry database attributes of store spans and
/// duration histograms: <c>db.system.name</c>, <c>server.address</c>, <c>server.port</c>. The built-in stores implement
/// it; a store of another package implements it to be reported the same way; any other store is reported as
/// <c>db.system.name=other</c> without a server.
/// </summary>
public interface IStoreTelemetry
{
    /// <summary>The <c>db.system.name</c> value: <c>redis</c>, <c>postgresql</c>, <c>other</c>.</summary>
    string DbSystemName { get; }

    /// <summary>The host the store connects to (the first configured one when there are several), or null when unknown.</summary>
    string? ServerAddress { get; }

    /// <summary>The port the store connects to, or null when unknown.</summary>
    int? ServerPort { get; }
}
