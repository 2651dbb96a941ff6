using System.Security.Cryptography.X509Certificates;

namespace ClusterDemo;

/// <summary>The running demo: the store, the nodes and the load balancer, started and stopped together.</summary>
internal sealed class DemoCluster : IAsyncDisposable
{
    private readonly List<WebApplication> _apps = [];
    private EmbeddedGarnet? _garnet;
    private X509Certificate2? _certificate;

    private DemoCluster(DemoArguments arguments) => Arguments = arguments;

    public DemoArguments Arguments { get; }

    /// <summary>A one-line description of the store in use.</summary>
    public string StoreDescription { get; private set; } = "";

    public static async Task<DemoCluster> StartAsync(DemoArguments arguments, TextWriter output, CancellationToken cancellationToken)
    {
        var cluster = new DemoCluster(arguments);
        try
        {
            await cluster.StartCoreAsync(output, cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var (store, garnet) = await DemoSessionStore.CreateAsync(Arguments, cancellationToken).ConfigureAwait(false);
        _garnet = garnet;
        StoreDescription = store.Description;
        output.WriteLine($"Store: {StoreDescription}");

        // Every node must read the authentication cookies every other node protects. A shared store keeps the
        // Data Protection key ring itself (ClusterSession's default), so logins also survive a restart of the
        // demo. The in-memory store keeps none: its node gets a key ring in memory, which dies with the process.
        var keyRing = store.KeepsKeyRing ? null : new InProcessKeyRing();
        for (var k = 1; k <= Arguments.Nodes; k++)
        {
            var node = DemoNode.Build(Arguments, k, store, keyRing);
            _apps.Add(node);
            await node.StartAsync(cancellationToken).ConfigureAwait(false);
            output.WriteLine($"Node node-{k}: {Arguments.NodeUrl(k)}");
        }

        if (Arguments.Https)
        {
            _certificate = DemoCertificate.Create();
            output.WriteLine($"Certificate: self-signed for 127.0.0.1 and localhost, SHA-256 {DemoCertificate.Fingerprint(_certificate)}");
        }

        var balancer = LoadBalancer.Build(Arguments, _certificate);
        _apps.Add(balancer);
        await balancer.StartAsync(cancellationToken).ConfigureAwait(false);
        output.WriteLine($"Load balancer (round robin over {Arguments.Nodes} node{(Arguments.Nodes == 1 ? "" : "s")}): {Arguments.LoadBalancerUrl}");
    }

    public async ValueTask DisposeAsync()
    {
        // The load balancer first, so that no request reaches a node that is going away.
        for (var i = _apps.Count - 1; i >= 0; i--)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _apps[i].StopAsync(timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                await _apps[i].DisposeAsync().ConfigureAwait(false);
            }
        }

        _apps.Clear();
        _garnet?.Dispose();
        _garnet = null;
        _certificate?.Dispose();
        _certificate = null;
    }
}
