using System.Text.Json;
using ClusterSession.Bench;
using ClusterSession.Bench.Contenders;
using Xunit;

namespace ClusterSession.Bench.Tests;

/// <summary>Runs the whole harness in its tiny mode so that it cannot rot. Asserts the shape of the report, never a timing.</summary>
public sealed class BenchSmokeTests
{
    private static readonly string[] Fields =
    [
        "contender", "scenario", "connections", "rps", "p50_ms", "p99_ms",
        "redis_commands_per_request", "redis_bytes_per_request", "session_bytes_in_redis", "lost_updates",
    ];

    private static readonly string[] Scenarios = ["read", "write", "mixed", "nosession"];

    [Fact]
    public async Task Tiny_run_writes_every_field_for_every_contender_scenario_and_connection_count()
    {
        var json = Path.Combine(Path.GetTempPath(), $"bench-smoke-{Guid.NewGuid():N}.json");
        var log = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            var exitCode = await BenchHarness.MainAsync(["--tiny", "--json", json], log, timeout.Token);

            Assert.True(exitCode == 0, log.ToString());
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            Assert.Equal(["rtt_ms", "results"], root.EnumerateObject().Select(p => p.Name));
            Assert.Equal(0.5, root.GetProperty("rtt_ms").GetDouble());
            var results = root.GetProperty("results").EnumerateArray().ToList();
            foreach (var contender in ContenderCatalog.All)
            {
                foreach (var scenario in Scenarios)
                {
                    foreach (var connections in new[] { 1, 32 })
                    {
                        var row = Assert.Single(results, r =>
                            r.GetProperty("contender").GetString() == contender.Name
                            && r.GetProperty("scenario").GetString() == scenario
                            && r.GetProperty("connections").GetInt32() == connections);
                        Assert.Equal(Fields, row.EnumerateObject().Select(p => p.Name));
                        Assert.True(row.GetProperty("rps").GetDouble() > 0, $"{contender.Name} {scenario} {connections}: no request was measured.");
                        Assert.NotEqual(JsonValueKind.Null, row.GetProperty("lost_updates").ValueKind);
                        var redisKind = contender.UsesRedis ? JsonValueKind.Number : JsonValueKind.Null;
                        Assert.Equal(redisKind, row.GetProperty("redis_commands_per_request").ValueKind);
                        Assert.Equal(redisKind, row.GetProperty("redis_bytes_per_request").ValueKind);
                        Assert.Equal(redisKind, row.GetProperty("session_bytes_in_redis").ValueKind);
                    }
                }
            }

            Assert.Equal(ContenderCatalog.All.Count * Scenarios.Length * 2, results.Count);
            Assert.DoesNotContain("WARNING", log.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
        }
    }
}
