using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace ClusterDemo;

/// <summary>A YARP reverse proxy on the demo port that sends requests to the nodes in turn.</summary>
internal static class LoadBalancer
{
    /// <summary>Builds the load balancer; with <c>--https</c> it serves <paramref name="certificate"/>.</summary>
    public static WebApplication Build(DemoArguments arguments, X509Certificate2? certificate)
    {
        var builder = DemoHost.CreateBuilder(arguments.LoadBalancerUrl);
        if (certificate is not null)
        {
            // TLS ends here, as at a real load balancer; the nodes behind it stay on http on 127.0.0.1.
            // (The slim builder leaves https:// addresses out until asked for them.)
            builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate));
        }

        var destinations = new Dictionary<string, DestinationConfig>(StringComparer.Ordinal);
        for (var k = 1; k <= arguments.Nodes; k++)
        {
            destinations["node-" + k.ToString(CultureInfo.InvariantCulture)] = new DestinationConfig { Address = arguments.NodeUrl(k) };
        }

        RouteConfig[] routes =
        [
            new RouteConfig { RouteId = "all", ClusterId = "nodes", Match = new RouteMatch { Path = "{**catch-all}" } },
        ];
        ClusterConfig[] clusters =
        [
            new ClusterConfig
            {
                ClusterId = "nodes",
                // Round robin, not sticky: every request may land on another node, which is the point.
                LoadBalancingPolicy = LoadBalancingPolicies.RoundRobin,
                Destinations = destinations,

                // Kestrel decodes request header bytes as UTF-8; encoding them as UTF-8 again forwards the exact
                // bytes the client sent. The proxy stays transparent and the node judges the input, as it does
                // when called directly: a non-ASCII cookie is a fresh session there, where the default
                // (ASCII only) made the proxy answer 502 Bad Gateway before the node saw anything.
                HttpClient = new HttpClientConfig { RequestHeaderEncoding = "utf-8" },
            },
        ];
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        // YARP protects affinity cookies with Data Protection, whose key ring loads (and gets its first key) at
        // startup. The demo uses no affinity, so the keys need not outlive the process, and none may land in the
        // user's profile.
        InProcessKeyRing.Use(builder.Services, new InProcessKeyRing());
        var app = builder.Build();
        app.MapReverseProxy();
        return app;
    }
}
