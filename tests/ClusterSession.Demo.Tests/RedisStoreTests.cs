using System.Net;
using ClusterSession.Testing.Servers;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// The demo on a real redis-server the test owns: an outage (the server killed and restarted) as <c>/healthz</c>
/// and the API report it, and a restart of the demo, after which its users are still signed in.
/// </summary>
public sealed class RedisStoreTests
{
    private const string OwnServerNeeded = "This test kills or inspects its redis-server; it needs a server of its own, not CLUSTERSESSION_REDIS.";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Healthz_is_200_while_redis_answers_503_while_it_is_down_and_200_again_after_a_restart_on_the_nodes_and_the_load_balancer()
    {
        var redis = new RedisServerFixture();
        await redis.InitializeAsync();
        try
        {
            Assert.True(redis.OwnsProcess, OwnServerNeeded);
            await using var demo = await DemoProcess.StartAsync(nodes: 2, "--redis", redis.Configuration);
            using var alice = new DemoClient();
            Assert.Equal(HttpStatusCode.OK, (await alice.LoginAsync(demo.LoadBalancer, "alice")).StatusCode);
            await UntilHealthEverywhereAsync(demo, HttpStatusCode.OK, "Healthy");

            redis.Kill();
            await UntilHealthEverywhereAsync(demo, HttpStatusCode.ServiceUnavailable, "Unhealthy");
            await AssertSessionRequestsFailFastWithRetryAfterAsync(demo, alice);

            // A request that never touches the session is not affected: the login page still renders.
            using (var stranger = new DemoClient())
            using (var page = await stranger.GetAsync(demo.LoadBalancer, "/"))
            {
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            }

            await redis.StartAsync();
            await UntilHealthEverywhereAsync(demo, HttpStatusCode.OK, "Healthy");

            // Healed without a restart of the demo: a new login is known on every node.
            using var bob = new DemoClient();
            Assert.Equal(HttpStatusCode.OK, (await bob.LoginAsync(demo.LoadBalancer, "bob")).StatusCode);
            for (var k = 1; k <= demo.Nodes; k++)
            {
                var me = await bob.GetJsonAsync(demo.Node(k), "/api/me");
                Assert.Equal("bob", me.GetProperty("user").GetString());
            }
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_restarted_demo_on_the_same_redis_keeps_its_users_signed_in_with_the_key_ring_kept_in_redis()
    {
        var redis = new RedisServerFixture();
        await redis.InitializeAsync();
        try
        {
            Assert.True(redis.OwnsProcess, OwnServerNeeded);
            await RestartCheck.AssertUsersStaySignedInAcrossARestartAsync(
                ["--redis", redis.Configuration],
                betweenRuns: async () =>
                {
                    var keyRingLength = await ServerProcess.TryCommandAsync(redis.Port, "LLEN clusterdemo:dataprotection-keys");
                    Assert.Matches(@"^:[1-9][0-9]*\r\n$", keyRingLength);
                });
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    /// <summary>
    /// Waits until every node's <c>/healthz</c> answers <paramref name="status"/>, then checks that the load balancer
    /// answers it too, from every node in turn.
    /// </summary>
    private static async Task UntilHealthEverywhereAsync(DemoProcess demo, HttpStatusCode status, string body)
    {
        using var client = new DemoClient();
        for (var k = 1; k <= demo.Nodes; k++)
        {
            var node = demo.Node(k);
            await ServerProcess.UntilAsync(
                async () =>
                {
                    using var response = await client.GetAsync(node, "/healthz");
                    return response.StatusCode == status;
                },
                Deadline,
                $"GET /healthz on node-{k} answers {(int)status}");
        }

        var servedBy = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < demo.Nodes * 2; i++)
        {
            using var response = await client.GetAsync(demo.LoadBalancer, "/healthz");
            Assert.Equal(status, response.StatusCode);
            Assert.Equal(body, await response.Content.ReadAsStringAsync());
            servedBy.Add(DemoClient.ServedBy(response));
        }

        Assert.Equal(demo.Nodes, servedBy.Count);
    }

    /// <summary>
    /// While the store is down, every request that needs the session is a 503 (never an empty session, never a
    /// 500). Once a node has detected the outage it stops calling the store: requests arriving between its tries
    /// fail at once, with <c>Retry-After</c>. So requests go in bursts, each through the load balancer to every node.
    /// </summary>
    private static async Task AssertSessionRequestsFailFastWithRetryAfterAsync(DemoProcess demo, DemoClient signedIn)
    {
        var cookies = signedIn.Cookie;
        var withRetryAfter = new HashSet<string>(StringComparer.Ordinal);
        var statuses = new List<int>();
        await ServerProcess.UntilAsync(
            async () =>
            {
                var burst = await Task.WhenAll(Enumerable.Range(0, demo.Nodes * 3).Select(async _ =>
                {
                    using var response = await signedIn.SendAsync(HttpMethod.Get, demo.LoadBalancer, "/api/attributes", rawCookieHeader: cookies);
                    return (Status: (int)response.StatusCode, Node: DemoClient.ServedBy(response), response.Headers.RetryAfter?.Delta, CacheControl: response.Headers.CacheControl?.ToString());
                }));
                foreach (var answer in burst)
                {
                    statuses.Add(answer.Status);
                    Assert.Equal("no-store", answer.CacheControl);
                    if (answer.Delta is { } delta)
                    {
                        Assert.True(delta >= TimeSpan.FromSeconds(1), $"Retry-After {delta} is under a second");
                        withRetryAfter.Add(answer.Node);
                    }
                }

                return withRetryAfter.Count == demo.Nodes;
            },
            Deadline,
            "every node answers a session request with 503 and Retry-After");

        Assert.All(statuses, status => Assert.Equal((int)HttpStatusCode.ServiceUnavailable, status));
    }
}
