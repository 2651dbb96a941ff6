using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>A client that really disconnects from Kestrel mid-request loses nothing the endpoint changed.</summary>
public sealed class AbortedRequestTests : IAsyncLifetime
{
    private readonly ListLoggerProvider _logs = new();
    private AppCluster? _cluster;

    private AppCluster Cluster => _cluster!;

    public async Task InitializeAsync() => _cluster = await AppCluster.StartAsync(new ClusterSession.InMemory.InMemorySessionStore(), instances: 1, logs: _logs);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Theory]
    [InlineData("new session", false, false)]
    [InlineData("stored session, write only", true, false)]
    [InlineData("stored session, endpoint throws on the abort", true, true)]
    public async Task Change_made_before_the_client_disconnected_is_saved_and_nothing_escapes(string label, bool existing, bool rethrow)
    {
        _ = label;
        string? id = null;
        if (existing)
        {
            var browser = new Browser();
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Cluster[0], "/s/set/a/1")).Status);
            id = browser.Cookies[".ClusterSession"];
        }

        var gate = (RequestGate)Cluster.Apps[0].Services.GetService(typeof(RequestGate))!;
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, Cluster[0].Port);
            var request = "POST /s/set-until-aborted/b/2" + (rethrow ? "?rethrow=true" : string.Empty) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                + (id is null ? string.Empty : "Cookie: .ClusterSession=" + id + "\r\n") + "\r\n";
            await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request));
            await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));

            // A reset, as a phone that lost its network or a closed tab leaves it: no response can reach the client.
            client.Client.LingerState = new LingerOption(true, 0);
            client.Client.Close();
        }

        await gate.Release.Task.WaitAsync(TimeSpan.FromSeconds(10));
        if (id is not null)
        {
            await UntilAsync(async () => (await Cluster.Store.Inner.LoadAsync(id))?.Attributes.ContainsKey("b") == true);
            var stored = (await Cluster.Store.Inner.LoadAsync(id))!;
            Assert.Equal("2", Encoding.UTF8.GetString(stored.Attributes["b"]));
            Assert.Equal("1", Encoding.UTF8.GetString(stored.Attributes["a"]));
        }
        else
        {
            // A new session whose cookie never reached the client is still saved (and expires unused), as the built-in's is.
            await UntilAsync(async () => await Cluster.Store.Inner.CountAsync() == 1);
        }

        await UntilAsync(() => Task.FromResult(_logs.Entries.Any(e => e.EventId.Name == "RequestAborted" || e.Category.Contains("Hosting", StringComparison.Ordinal) && e.Message.Contains("finished", StringComparison.OrdinalIgnoreCase))));
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Error);
        Assert.DoesNotContain(_logs.Entries, e => e.Exception?.Contains(nameof(OperationCanceledException), StringComparison.Ordinal) == true || e.Exception?.Contains("TaskCanceledException", StringComparison.Ordinal) == true);
    }

    private static async Task UntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The condition did not hold within 10 s.");
            await Task.Delay(20);
        }
    }
}
