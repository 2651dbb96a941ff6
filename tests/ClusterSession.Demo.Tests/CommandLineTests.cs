using System.Net;
using ClusterSession.Testing.Servers;

namespace ClusterSession.Demo.Tests;

/// <summary>The command itself: arguments, the lines it prints, a clean stop.</summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData("--nodes", "0")]
    [InlineData("--nodes", "many")]
    [InlineData("--port", "70000")]
    [InlineData("--idle-timeout", "-5")]
    [InlineData("--max-sessions-per-user", "0")]
    [InlineData("--max-sessions-per-user", "two")]
    [InlineData("--store", "mongodb")]
    [InlineData("--store", "redis")]
    [InlineData("--store", "memory")]
    [InlineData("--store", "postgres")]
    [InlineData("--postgres", "Host=127.0.0.1", "--store", "garnet")]
    [InlineData("--postgres", "Host=127.0.0.1", "--redis", "127.0.0.1:6379")]
    [InlineData("--frobnicate")]
    [InlineData("--wait-replicas", "17", "--redis", "127.0.0.1:6379")]
    [InlineData("--wait-replicas", "two", "--redis", "127.0.0.1:6379")]
    [InlineData("--wait-replicas", "1")]
    [InlineData("--wait-replicas", "1", "--store", "postgres", "--postgres", "Host=127.0.0.1")]
    [InlineData("--near-cache", "--store", "memory", "--nodes", "1")]
    [InlineData("--near-cache=yes", "--redis", "127.0.0.1:6379")]
    [InlineData("--https=yes")]
    public async Task Bad_arguments_print_the_usage_and_exit_with_code_2(params string[] arguments)
    {
        var (exitCode, output) = await DemoProcess.RunToExitAsync(arguments);

        Assert.Equal(2, exitCode);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains("ClusterDemo: ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Memory_store_with_more_than_one_node_is_refused_with_a_reason()
    {
        var (exitCode, output) = await DemoProcess.RunToExitAsync("--store", "memory", "--nodes", "2");

        Assert.Equal(2, exitCode);
        Assert.Contains("--nodes 1", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Near_cache_with_the_memory_store_is_refused_with_a_reason()
    {
        var (exitCode, output) = await DemoProcess.RunToExitAsync("--near-cache", "--store", "memory", "--nodes", "1");

        Assert.Equal(2, exitCode);
        Assert.Contains("--near-cache does not apply to --store memory", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task It_prints_every_url_and_the_store_then_stops_cleanly_on_sigterm()
    {
        await using var demo = await DemoProcess.StartAsync(nodes: 2);

        var output = demo.Output;
        Assert.Contains($"ClusterDemo ready: http://127.0.0.1:{demo.Port}", output, StringComparison.Ordinal);
        Assert.Contains("Store: garnet", output, StringComparison.Ordinal);
        Assert.Contains($"node-1: http://127.0.0.1:{demo.Port + 1}", output, StringComparison.Ordinal);
        Assert.Contains($"node-2: http://127.0.0.1:{demo.Port + 2}", output, StringComparison.Ordinal);

        var exitCode = await demo.TerminateAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, exitCode);
        Assert.Contains("ClusterDemo stopped.", demo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Memory_store_runs_one_node_behind_the_load_balancer_and_signs_in()
    {
        await using var demo = await DemoProcess.StartAsync(nodes: 1, "--store", "memory");
        using var client = new DemoClient();

        using var response = await client.GetAsync(demo.LoadBalancer, "/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("node-1", DemoClient.ServedBy(response));
        Assert.Contains("Store: memory", demo.Output, StringComparison.Ordinal);

        // The in-memory store keeps no key ring: the node's in-process one protects and reads the cookie.
        Assert.Equal(HttpStatusCode.OK, (await client.LoginAsync(demo.LoadBalancer, "alice")).StatusCode);
        foreach (var target in new[] { demo.Node(1), demo.LoadBalancer })
        {
            var me = await client.GetJsonAsync(target, "/api/me");
            Assert.Equal("alice", me.GetProperty("user").GetString());
        }
    }

    [Fact]
    public async Task Max_sessions_per_user_ends_the_oldest_session_when_the_user_signs_in_again()
    {
        await using var demo = await DemoProcess.StartAsync(nodes: 2, "--max-sessions-per-user", "1");
        using var first = new DemoClient("First device");
        using var second = new DemoClient("Second device");
        Assert.Equal(HttpStatusCode.OK, (await first.LoginAsync(demo.Node(1), "alice")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await second.LoginAsync(demo.Node(2), "alice")).StatusCode);

        Assert.Equal("alice", (await second.GetJsonAsync(demo.Node(1), "/api/me")).GetProperty("user").GetString());
        using var ended = await first.GetAsync(demo.Node(2), "/api/me");
        Assert.Equal(HttpStatusCode.Unauthorized, ended.StatusCode);
        using var page = await second.GetAsync(demo.Node(1), "/");
        Assert.Contains("at most 1", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task External_redis_store_shares_the_login_between_nodes_and_logout_everywhere()
    {
        var redis = new RedisServerFixture();
        await redis.InitializeAsync();
        try
        {
            await using var demo = await DemoProcess.StartAsync(nodes: 2, "--redis", redis.Configuration);

            await AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(demo);
            Assert.Contains("Store: redis", demo.Output, StringComparison.Ordinal);
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task Near_cache_on_redis_shares_the_login_and_the_session_between_nodes_and_logout_everywhere()
    {
        var redis = new RedisServerFixture();
        await redis.InitializeAsync();
        try
        {
            await using var demo = await DemoProcess.StartAsync(nodes: 3, "--redis", redis.Configuration, "--near-cache");
            Assert.Contains("near cache on in every node", demo.Output, StringComparison.Ordinal);

            await AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(demo);

            // Every node reads the session (and keeps a copy); one node changes it; every node serves the change.
            // (How often a read right after the change still gets the copy is what the MultiHost near-cache test measures.)
            using var client = new DemoClient("Near-cache test");
            Assert.Equal(HttpStatusCode.NoContent, (await client.PutAttributeAsync(demo.Node(1), "color", "red")).StatusCode);
            for (var k = 1; k <= demo.Nodes; k++)
            {
                Assert.Equal("red", (await client.GetJsonAsync(demo.Node(k), "/api/attributes")).GetProperty("color").GetString());
            }

            Assert.Equal(HttpStatusCode.NoContent, (await client.PutAttributeAsync(demo.Node(2), "color", "blue")).StatusCode);
            for (var k = 1; k <= demo.Nodes; k++)
            {
                var node = demo.Node(k);
                await ServerProcess.UntilAsync(
                    async () => (await client.GetJsonAsync(node, "/api/attributes")).GetProperty("color").GetString() == "blue",
                    TimeSpan.FromSeconds(10),
                    $"node-{k} serves the attribute changed on node-2");
            }

            using (var page = await client.GetAsync(demo.Node(3), "/"))
            {
                Assert.Contains("id=\"near-cache\">on", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            // The nodes' caches really are on: they announce changes and heartbeats with PUBLISH (the scripts' calls count too).
            if (redis.OwnsProcess)
            {
                var stats = await ServerProcess.TryCommandAsync(redis.Port, "INFO commandstats");
                Assert.Matches(@"cmdstat_publish:calls=[1-9]", stats);
            }
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task Near_cache_on_the_embedded_garnet_shares_the_login_between_nodes_and_logout_everywhere()
    {
        await using var demo = await DemoProcess.StartAsync(nodes: 2, "--near-cache");

        await AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(demo);
        Assert.Contains("near cache on in every node", demo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Near_cache_on_postgres_shares_the_login_between_nodes_and_logout_everywhere()
    {
        var postgres = new PostgresServerFixture();
        await postgres.InitializeAsync();
        try
        {
            await using var demo = await DemoProcess.StartAsync(nodes: 2, "--postgres", postgres.ConnectionString, "--near-cache");

            await AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(demo);
            Assert.Contains("near cache on in every node", demo.Output, StringComparison.Ordinal);
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }

    [Fact]
    public async Task Wait_replicas_makes_the_demo_wait_with_a_message_and_say_ready_only_once_a_replica_acknowledges_writes()
    {
        var primary = new RedisServerFixture();
        var replica = new RedisServerFixture();
        await primary.InitializeAsync();
        await replica.InitializeAsync();
        try
        {
            Assert.True(replica.OwnsProcess, "This test makes a replica of a redis-server of its own, not CLUSTERSESSION_REDIS.");
            await using var demo = DemoProcess.Launch(1, "--redis", primary.Configuration, "--wait-replicas", "1");
            using var client = new DemoClient();
            await ServerProcess.UntilAsync(
                () => Task.FromResult(demo.Output.Contains("Waiting until the store takes writes", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(60),
                "the demo says what it waits for");

            // Not ready: no replica, so no write is acknowledged. The node is live; the login is refused, never reported done.
            Assert.False(demo.Ready.IsCompleted, demo.Output);
            Assert.Contains("saves wait for 1 replica(s)", demo.Output, StringComparison.Ordinal);
            Assert.Contains("0 of 1 replica(s) connected", demo.Output, StringComparison.Ordinal);
            await AssertHealthAsync(client, demo.Node(1), "/healthz/live", HttpStatusCode.OK, "Healthy");
            await AssertHealthAsync(client, demo.Node(1), "/healthz/ready", HttpStatusCode.ServiceUnavailable, "Unhealthy");
            await AssertHealthAsync(client, demo.Node(1), "/healthz", HttpStatusCode.OK, "Degraded");
            using (var refused = await client.LoginAsync(demo.Node(1), "alice"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            }

            // A replica: once it is in sync (its first sync takes a few seconds), a write is acknowledged and the demo says ready.
            Assert.StartsWith("+OK", await ServerProcess.TryCommandAsync(replica.Port, $"REPLICAOF 127.0.0.1 {primary.Port}"), StringComparison.Ordinal);
            await demo.Ready.WaitAsync(TimeSpan.FromSeconds(60));
            var output = demo.Output;
            Assert.True(
                output.IndexOf("Waiting until the store takes writes", StringComparison.Ordinal) < output.IndexOf("ClusterDemo ready: ", StringComparison.Ordinal),
                output);
            await AssertHealthAsync(client, demo.Node(1), "/healthz/ready", HttpStatusCode.OK, "Healthy");
            await AssertHealthAsync(client, demo.Node(1), "/healthz", HttpStatusCode.OK, "Healthy");
            using var login = await client.LoginAsync(demo.Node(1), "alice");
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }
        finally
        {
            await replica.DisposeAsync();
            await primary.DisposeAsync();
        }
    }

    private static async Task AssertHealthAsync(DemoClient client, Uri node, string path, HttpStatusCode status, string body)
    {
        using var response = await client.GetAsync(node, path);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Postgres_store_creates_its_tables_shares_the_login_between_nodes_logout_everywhere_and_logins_across_a_restart()
    {
        var postgres = new PostgresServerFixture();
        await postgres.InitializeAsync();
        try
        {
            await using (var demo = await DemoProcess.StartAsync(nodes: 2, "--store", "postgres", "--postgres", postgres.ConnectionString))
            {
                await AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(demo);
                Assert.Contains("Store: postgres", demo.Output, StringComparison.Ordinal);
                Assert.Contains("clusterdemo_key_ring created by the demo at startup", demo.Output, StringComparison.Ordinal);
            }

            // The key ring is in the clusterdemo_key_ring table: a restarted demo reads the cookies of the last one.
            await RestartCheck.AssertUsersStaySignedInAcrossARestartAsync(["--store", "postgres", "--postgres", postgres.ConnectionString]);
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }

    private static async Task AssertLoginIsSharedAndLogoutIsRefusedEverywhereAsync(DemoProcess demo)
    {
        using var client = new DemoClient("Shared-store test");
        using (var login = await client.LoginAsync(demo.Node(1), "alice"))
        {
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }

        var me = await client.GetJsonAsync(demo.Node(2), "/api/me");
        Assert.Equal("alice", me.GetProperty("user").GetString());
        var device = Assert.Single((await client.GetJsonAsync(demo.Node(2), "/api/sessions")).EnumerateArray());
        Assert.Equal("Shared-store test", device.GetProperty("userAgent").GetString());

        var cookie = client.Cookie;
        using (var logout = await client.SendAsync(HttpMethod.Post, demo.Node(2), "/api/logout"))
        {
            Assert.True(logout.IsSuccessStatusCode, $"logout answered {(int)logout.StatusCode}");
        }

        foreach (var node in new[] { demo.Node(1), demo.Node(2), demo.LoadBalancer })
        {
            client.Cookie = cookie;
            using var refused = await client.GetAsync(node, "/api/me");
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
    }
}
