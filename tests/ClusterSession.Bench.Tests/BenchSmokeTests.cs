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
        "store_round_trips_per_request", "store_bytes_per_request", "session_bytes_in_store",
        "wal_bytes_per_request", "wal_bytes_per_write", "dead_tuples_after_writes", "table_bytes_after_writes",
    ];

    private static readonly string[] Scenarios = ["read", "write", "mixed", "nosession", "nosession-cookie"];

    /// <summary>Measured once per contender, at one connection (the touch when it is due, on a second node).</summary>
    private const string FirstRequestScenario = "nosession-cookie-first";

    [Fact]
    public void Postgres_round_trip_counter_counts_syncs_and_queries_once_per_flight()
    {
        var counter = new PostgresRoundTripCounter();
        byte[] startup = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F, 0, 0, 0, 9, 0, 3, 0, 0, 0];
        byte[] parse = [(byte)'P', 0, 0, 0, 6, 1, 2];
        byte[] sync = [(byte)'S', 0, 0, 0, 4];
        byte[] query = [(byte)'Q', 0, 0, 0, 5, 0];

        Assert.Equal(0, counter.Count(startup));
        counter.ServerAnswered();
        Assert.Equal(0, counter.Count(parse.AsSpan(0, 3)));
        Assert.Equal(1, counter.Count([.. parse.AsSpan(3), .. sync]));
        Assert.Equal(0, counter.Count(query)); // sent before any answer: the same flight
        counter.ServerAnswered();
        Assert.Equal(1, counter.Count(query));
    }

    [Fact]
    public void Resp_counter_counts_commands_on_one_key_sent_together_as_one_round_trip()
    {
        static byte[] Command(params string[] parts)
            => System.Text.Encoding.ASCII.GetBytes($"*{parts.Length}\r\n" + string.Concat(parts.Select(p => $"${p.Length}\r\n{p}\r\n")));

        var load = Command("EVALSHA", "0123456789abcdef0123456789abcdef01234567", "1", "cs:s:{a}", "", "100");
        var read = Command("HGETALL", "cs:s:{a}");
        var other = Command("HGETALL", "cs:s:{b}");
        var counter = new RespCommandCounter();

        // A script and the read pipelined beside it on the same key: one round trip.
        Assert.Equal(1, counter.Count([.. load, .. read]));

        // The same commands arriving in separate chunks, split anywhere: two.
        Assert.Equal(0, counter.Count(load.AsSpan(0, 20)));
        Assert.Equal(1, counter.Count(load.AsSpan(20)));
        Assert.Equal(1, counter.Count(read));

        // Two requests' commands sharing a connection name different keys: two.
        Assert.Equal(2, counter.Count([.. read, .. other]));
        Assert.Equal(2, counter.Count([.. Command("PING"), .. Command("PING")]));
    }

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
                foreach (var scenario in (string[])[.. Scenarios, FirstRequestScenario])
                {
                    foreach (var connections in scenario == FirstRequestScenario ? new[] { 1 } : new[] { 1, 32 })
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
                        var usesPostgres = contender.PostgresTables.Count > 0;
                        var storeKind = contender.UsesRedis || usesPostgres ? JsonValueKind.Number : JsonValueKind.Null;
                        Assert.Equal(storeKind, row.GetProperty("store_round_trips_per_request").ValueKind);
                        Assert.Equal(storeKind, row.GetProperty("store_bytes_per_request").ValueKind);
                        Assert.Equal(storeKind, row.GetProperty("session_bytes_in_store").ValueKind);
                        var postgresKind = usesPostgres ? JsonValueKind.Number : JsonValueKind.Null;
                        Assert.Equal(postgresKind, row.GetProperty("wal_bytes_per_request").ValueKind);
                        Assert.Equal(usesPostgres && scenario == "write" ? JsonValueKind.Number : JsonValueKind.Null, row.GetProperty("wal_bytes_per_write").ValueKind);
                        Assert.Equal(postgresKind, row.GetProperty("dead_tuples_after_writes").ValueKind);
                        Assert.Equal(postgresKind, row.GetProperty("table_bytes_after_writes").ValueKind);
                        if ((usesPostgres || contender.Name == "clustersession-redis") && scenario is "read" or "write")
                        {
                            // A read is one load; a write-only request is one save without a load.
                            Assert.Equal(1.0, row.GetProperty("store_round_trips_per_request").GetDouble());
                        }

                        if ((usesPostgres || contender.Name == "clustersession-redis") && scenario == FirstRequestScenario)
                        {
                            // Each request's touch is due on the node that has not seen the session: one load, after the response.
                            Assert.Equal(1.0, row.GetProperty("store_round_trips_per_request").GetDouble());
                        }

                        if (contender.Name == ContenderCatalog.BaselineName && scenario.StartsWith("nosession-cookie", StringComparison.Ordinal))
                        {
                            // The built-in refreshes a session whose cookie came with the request on every request: HMGET + EXPIRE.
                            Assert.Equal(2.0, row.GetProperty("store_round_trips_per_request").GetDouble());
                        }
                    }
                }
            }

            Assert.Equal(ContenderCatalog.All.Count * ((Scenarios.Length * 2) + 1), results.Count);
            Assert.DoesNotContain("WARNING", log.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
        }
    }
}
