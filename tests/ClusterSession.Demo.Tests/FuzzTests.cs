using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// Bad input never gets a 5xx from the demo, load balancer included: a few thousand fuzzed requests
/// (see <see cref="FuzzedRequests"/>) through the load balancer and straight to one node of a running demo.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    /// <summary>Fixed, so a failure replays; CLUSTERDEMO_FUZZ_SEED runs another sequence.</summary>
    private const int DefaultSeed = 20261130;
    private const int ThroughLoadBalancer = 3000;
    private const int StraightToANode = 1500;
    private const int Connections = 4;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan PerRequest = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Thousands_of_fuzzed_requests_through_the_load_balancer_and_to_a_node_get_no_5xx_and_the_demo_still_works()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("CLUSTERDEMO_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : DefaultSeed;
        await using var demo = await DemoProcess.StartAsync(nodes: 3);
        var realCookies = await RealCookiesAsync(demo);
        var generator = new FuzzedRequests(seed, realCookies);
        var throughBalancer = Enumerable.Range(0, ThroughLoadBalancer).Select(_ => generator.Next()).ToArray();
        var toNode = Enumerable.Range(0, StraightToANode).Select(_ => generator.Next()).ToArray();

        using var budget = new CancellationTokenSource(Budget);
        var stopwatch = Stopwatch.StartNew();
        var balancerResults = await SendAllAsync(demo.Port, throughBalancer, budget.Token);
        var nodeResults = await SendAllAsync(demo.Port + 1, toNode, budget.Token);
        stopwatch.Stop();

        output.WriteLine($"seed {seed}, {stopwatch.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"load balancer: {Summary(balancerResults)}");
        output.WriteLine($"node-1:        {Summary(nodeResults)}");

        // Bounded in time as well as count; on a slow machine fewer requests are sent, never none.
        Assert.True(balancerResults.Count >= ThroughLoadBalancer / 4 && nodeResults.Count >= StraightToANode / 4,
            $"only {balancerResults.Count} + {nodeResults.Count} requests were answered within {Budget.TotalSeconds} s");
        var failures = balancerResults.Select(r => ("load balancer", r)).Concat(nodeResults.Select(r => ("node-1", r)))
            .Where(x => x.r.Status is null or >= 500)
            .Select(x => $"{x.Item1}: {(x.r.Status?.ToString(CultureInfo.InvariantCulture) ?? "no answer")} for [{x.r.Request.Label}] {Printable(x.r.Request.Bytes)}")
            .ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} fuzzed requests got a 5xx or no answer:\n{string.Join('\n', failures.Take(20))}");
        Assert.DoesNotContain("fail:", demo.Output, StringComparison.Ordinal);

        await AssertTheDemoStillWorksAsync(demo);
    }

    /// <summary>Cookies of a live logged-in session, a live anonymous one and a logged-out one, for the generator to mix in and mutate.</summary>
    private static async Task<IReadOnlyList<string>> RealCookiesAsync(DemoProcess demo)
    {
        using var live = new DemoClient();
        using var anonymous = new DemoClient();
        using var stale = new DemoClient();
        Assert.Equal(HttpStatusCode.OK, (await live.LoginAsync(demo.LoadBalancer, "alice")).StatusCode);
        Assert.True((await anonymous.PutAttributeAsync(demo.LoadBalancer, "a1", "v")).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.OK, (await stale.LoginAsync(demo.LoadBalancer, "bob")).StatusCode);
        var staleCookies = stale.Cookie!;
        Assert.True((await stale.SendAsync(HttpMethod.Post, demo.LoadBalancer, "/api/logout")).IsSuccessStatusCode);
        return [.. new[] { live.Cookie!, anonymous.Cookie!, staleCookies }.SelectMany(c => c.Split("; "))];
    }

    private static async Task AssertTheDemoStillWorksAsync(DemoProcess demo)
    {
        using var client = new DemoClient();
        Assert.Equal(HttpStatusCode.OK, (await client.LoginAsync(demo.LoadBalancer, "carol")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.AddToCartAsync(demo.LoadBalancer, "after the fuzz")).StatusCode);
        for (var k = 1; k <= demo.Nodes; k++)
        {
            var me = await client.GetJsonAsync(demo.Node(k), "/api/me");
            Assert.Equal("carol", me.GetProperty("user").GetString());
            var cart = await client.GetJsonAsync(demo.Node(k), "/api/cart");
            Assert.Equal("after the fuzz", Assert.Single(cart.EnumerateArray()).GetString());
        }

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendAsync(HttpMethod.Post, demo.LoadBalancer, "/api/logout")).StatusCode);
    }

    private static async Task<IReadOnlyCollection<FuzzResult>> SendAllAsync(int port, FuzzedRequest[] requests, CancellationToken budget)
    {
        var results = new ConcurrentQueue<FuzzResult>();
        var next = -1;
        var workers = Enumerable.Range(0, Connections).Select(_ => Task.Run(async () =>
        {
            int i;
            while (!budget.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < requests.Length)
            {
                results.Enqueue(new FuzzResult(requests[i], await SendAsync(port, requests[i].Bytes)));
            }
        }));
        await Task.WhenAll(workers);
        return results;
    }

    /// <summary>Sends one request on its own connection and returns the status code of the answer, or null when none came.</summary>
    private static async Task<int?> SendAsync(int port, byte[] request)
    {
        using var timeout = new CancellationTokenSource(PerRequest);
        using var client = new TcpClient(AddressFamily.InterNetwork);
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            var stream = client.GetStream();
            try
            {
                await stream.WriteAsync(request, timeout.Token);
            }
            catch (IOException)
            {
                // The server may answer (431, 400) and close before it read everything: the answer is still there to read.
            }
            var buffer = new byte[4096];
            var received = 0;
            int read;
            while (received < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(received), timeout.Token)) > 0)
            {
                received += read;
                if (buffer.AsSpan(0, received).IndexOf("\r\n"u8) >= 0)
                {
                    break;
                }
            }

            // "HTTP/1.1 200 OK"
            var statusLine = Encoding.ASCII.GetString(buffer, 0, received);
            return statusLine.StartsWith("HTTP/1.1 ", StringComparison.Ordinal)
                && int.TryParse(statusLine.AsSpan(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status)
                ? status
                : null;
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
        {
            return null;
        }
    }

    private static string Summary(IReadOnlyCollection<FuzzResult> results)
        => $"{results.Count} requests: " + string.Join(", ", results
            .GroupBy(r => r.Status?.ToString(CultureInfo.InvariantCulture) ?? "no answer")
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} x{g.Count()}"));

    private static string Printable(byte[] request)
    {
        var text = new StringBuilder();
        foreach (var b in request.AsSpan(0, Math.Min(request.Length, 300)))
        {
            text.Append(b is >= 0x20 and < 0x7f ? (char)b : b == '\n' ? "\\n" : b == '\r' ? "\\r" : $"\\x{b:x2}");
        }

        return text.ToString();
    }

    private sealed record FuzzResult(FuzzedRequest Request, int? Status);
}
