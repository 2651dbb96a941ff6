using System.Net;
using StackExchange.Redis;

namespace ClusterSession.Redis;

// What the instrumentation reports about this store: db.system.name=redis and the first configured endpoint (a cluster
// or Sentinel deployment has several; the span names the one the application was pointed at).
public sealed partial class RedisSessionStore : IStoreTelemetry
{
    private const int DefaultPort = 6379;

    string IStoreTelemetry.DbSystemName => "redis";

    string? IStoreTelemetry.ServerAddress => _endpoint.Address;

    int? IStoreTelemetry.ServerPort => _endpoint.Port;

    private static (string? Address, int? Port) EndpointOf(RedisSessionStoreOptions options, IConnectionMultiplexer? multiplexer)
    {
        EndPoint? endpoint;
        try
        {
            endpoint = multiplexer is not null
                ? multiplexer.GetEndPoints(configuredOnly: true).FirstOrDefault()
                : options.Configuration is { } configuration ? ConfigurationOptions.Parse(configuration).EndPoints.FirstOrDefault() : null;
        }
        catch (ArgumentException)
        {
            endpoint = null;
        }

        return endpoint switch
        {
            DnsEndPoint dns => (dns.Host, dns.Port == 0 ? DefaultPort : dns.Port),
            IPEndPoint ip => (ip.Address.ToString(), ip.Port == 0 ? DefaultPort : ip.Port),
            _ => (null, null),
        };
    }
}
