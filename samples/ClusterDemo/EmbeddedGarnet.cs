using System.Net;
using System.Net.Sockets;
using Garnet;
using Garnet.server;

namespace ClusterDemo;

/// <summary>Microsoft Garnet running inside the demo's process on a free loopback port.</summary>
internal sealed class EmbeddedGarnet : IDisposable
{
    private readonly GarnetServer _server;

    private EmbeddedGarnet(GarnetServer server, IPEndPoint endPoint)
    {
        _server = server;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>A StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => $"{EndPoint},abortConnect=false";

    public static EmbeddedGarnet Start()
    {
        // The free port is found by binding port 0 and releasing it; another process could take it
        // in between, so a failed start is retried on a new port a few times.
        for (var attempt = 1; ; attempt++)
        {
            var endPoint = new IPEndPoint(IPAddress.Loopback, FreeLoopbackPort());
            var server = new GarnetServer(new GarnetServerOptions
            {
                EndPoints = [endPoint],
                QuietMode = true,
                // The Redis store runs its load and save operations as server-side scripts, and
                // relies on each script being atomic, as in Redis. Garnet runs scripts without key
                // locks unless LuaTransactionMode is on: concurrent compare-and-sets then lose updates.
                EnableLua = true,
                LuaTransactionMode = true,
                LuaOptions = new LuaOptions(),
            });
            try
            {
                server.Start();
                return new EmbeddedGarnet(server, endPoint);
            }
            catch (Exception) when (attempt < 5)
            {
                server.Dispose();
            }
        }
    }

    public void Dispose() => _server.Dispose();

    internal static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
