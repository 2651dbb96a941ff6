namespace ClusterSession.Postgres;

// What the instrumentation reports about this store: db.system.name=postgresql and the first host of the connection
// string (a multi-host connection string lists several; the span names the first).
public sealed partial class PostgresSessionStore : IStoreTelemetry
{
    private string? _serverAddress;
    private int? _serverPort;

    string IStoreTelemetry.DbSystemName => "postgresql";

    string? IStoreTelemetry.ServerAddress => _serverAddress;

    int? IStoreTelemetry.ServerPort => _serverPort;

    private void SetServer(string? host, int port)
    {
        var first = host?.Split(',', 2)[0].Trim();
        if (string.IsNullOrEmpty(first))
        {
            return;
        }

        // A host may carry its own port ("db1:5433,db2").
        var colon = first.LastIndexOf(':');
        if (colon > 0 && first.IndexOf(']', StringComparison.Ordinal) < colon
            && int.TryParse(first.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var own))
        {
            _serverAddress = first[..colon];
            _serverPort = own;
            return;
        }

        _serverAddress = first;
        _serverPort = port;
    }
}
