using System.Net;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// A user signs in on a demo, the demo stops, another starts on the same store: the user is still signed in,
/// on every node and through the load balancer. Each run gets an empty <c>HOME</c> of its own, as a new host
/// or container would, so the keys that protect the cookies can only come from the store.
/// </summary>
internal static class RestartCheck
{
    /// <param name="storeArguments">The demo's store options, e.g. <c>--redis host:port</c>.</param>
    /// <param name="betweenRuns">Runs after the first demo stopped and before the second starts.</param>
    public static async Task AssertUsersStaySignedInAcrossARestartAsync(string[] storeArguments, Func<Task>? betweenRuns = null)
    {
        var firstHome = Directory.CreateTempSubdirectory("clusterdemo-home-").FullName;
        var secondHome = Directory.CreateTempSubdirectory("clusterdemo-home-").FullName;
        try
        {
            using var client = new DemoClient("Restart test");
            await using (var first = await DemoProcess.StartInHomeAsync(firstHome, nodes: 2, storeArguments))
            {
                Assert.Equal(HttpStatusCode.OK, (await client.LoginAsync(first.Node(1), "alice")).StatusCode);
                Assert.True((await client.PutAttributeAsync(first.LoadBalancer, "theme", "dark")).IsSuccessStatusCode);
                Assert.Equal(0, await first.TerminateAsync(TimeSpan.FromSeconds(30)));
            }

            var cookies = client.Cookie;
            Assert.Contains(DemoClient.AuthCookieName + "=", cookies, StringComparison.Ordinal);
            AssertNoKeysIn(firstHome);
            if (betweenRuns is not null)
            {
                await betweenRuns();
            }

            await using var second = await DemoProcess.StartInHomeAsync(secondHome, nodes: 2, storeArguments);
            foreach (var target in new[] { second.Node(1), second.Node(2), second.LoadBalancer })
            {
                client.Cookie = cookies;
                var me = await client.GetJsonAsync(target, "/api/me");
                Assert.Equal("alice", me.GetProperty("user").GetString());
                var attributes = await client.GetJsonAsync(target, "/api/attributes");
                Assert.Equal("dark", attributes.GetProperty("theme").GetString());
            }

            AssertNoKeysIn(secondHome);
        }
        finally
        {
            Directory.Delete(firstHome, recursive: true);
            Directory.Delete(secondHome, recursive: true);
        }
    }

    /// <summary>Data Protection's default key folder, which a demo on a shared store must not use.</summary>
    private static void AssertNoKeysIn(string home)
        => Assert.False(Directory.Exists(Path.Combine(home, ".aspnet")), $"the demo wrote Data Protection keys into its HOME ({home}/.aspnet)");
}
