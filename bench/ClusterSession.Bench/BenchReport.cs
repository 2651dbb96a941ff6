using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterSession.Bench;

/// <summary>
/// The JSON file: the fields issue 7 names, then the store-neutral and PostgreSQL fields of issue 8, then
/// the store server's CPU of issue 15 (added after, never renamed), null where a figure does not apply.
/// For Redis a store round trip is a top-level command (the clients here do not pipeline one request's
/// commands); for PostgreSQL it is a Sync or simple Query message; the in-process store makes none (0).
/// </summary>
internal sealed record BenchReport(
    [property: JsonPropertyName("rtt_ms")] double RttMs,
    [property: JsonPropertyName("results")] IReadOnlyList<BenchResult> Results)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Indented JSON for the expiry and crash facts.</summary>
    public static JsonSerializerOptions IndentedJson { get; } = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

internal sealed record BenchResult(
    [property: JsonPropertyName("contender")] string Contender,
    [property: JsonPropertyName("scenario")] string Scenario,
    [property: JsonPropertyName("connections")] int Connections,
    [property: JsonPropertyName("rps")] double Rps,
    [property: JsonPropertyName("p50_ms")] double P50Ms,
    [property: JsonPropertyName("p99_ms")] double P99Ms,
    [property: JsonPropertyName("redis_commands_per_request")] double? RedisCommandsPerRequest,
    [property: JsonPropertyName("redis_bytes_per_request")] double? RedisBytesPerRequest,
    [property: JsonPropertyName("session_bytes_in_redis")] long? SessionBytesInRedis,
    [property: JsonPropertyName("lost_updates")] int? LostUpdates,
    [property: JsonPropertyName("store_round_trips_per_request")] double? StoreRoundTripsPerRequest,
    [property: JsonPropertyName("store_bytes_per_request")] double? StoreBytesPerRequest,
    [property: JsonPropertyName("session_bytes_in_store")] long? SessionBytesInStore,
    [property: JsonPropertyName("wal_bytes_per_request")] double? WalBytesPerRequest,
    [property: JsonPropertyName("wal_bytes_per_write")] double? WalBytesPerWrite,
    [property: JsonPropertyName("dead_tuples_after_writes")] long? DeadTuplesAfterWrites,
    [property: JsonPropertyName("table_bytes_after_writes")] long? TableBytesAfterWrites,
    [property: JsonPropertyName("store_cpu_us_per_request")] double? StoreCpuUsPerRequest,
    [property: JsonPropertyName("store_command_us_per_request")] double? StoreCommandUsPerRequest);

/// <summary>The console table, with ratios against the baseline contender.</summary>
internal static class ReportTable
{
    public static string Render(IReadOnlyList<BenchResult> results, string baseline)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Ratios (x) are against {baseline} in the same scenario and connection count.");
        sb.AppendLine("| contender | scenario | conns | req/s | x | p50 ms | x | p99 ms | x | store trips/req | store bytes/req | x | store CPU us/req | x | session bytes in store | WAL bytes/req | lost updates |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in results)
        {
            var b = results.FirstOrDefault(x => x.Contender == baseline && x.Scenario == r.Scenario && x.Connections == r.Connections);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Contender} | {r.Scenario} | {r.Connections} | {r.Rps:F0} | {Ratio(r.Rps, b?.Rps)} | {r.P50Ms:F3} | {Ratio(r.P50Ms, b?.P50Ms)} | {r.P99Ms:F3} | {Ratio(r.P99Ms, b?.P99Ms)} | {Num(r.StoreRoundTripsPerRequest, "F2")} | {Num(r.StoreBytesPerRequest, "F0")} | {Ratio(r.StoreBytesPerRequest, b?.StoreBytesPerRequest)} | {Num(r.StoreCpuUsPerRequest, "F1")} | {Ratio(r.StoreCpuUsPerRequest, b?.StoreCpuUsPerRequest)} | {Num(r.SessionBytesInStore, "F0")} | {Num(r.WalBytesPerRequest, "F0")} | {Num(r.LostUpdates, "F0")} |");
        }

        return sb.ToString();
    }

    /// <summary>
    /// Issue 15's store targets for every other contender over the same Redis as the baseline: store CPU per request
    /// against the baseline's (read, write, signedin) and session bytes in the store (the 10 x 100-byte and the
    /// signed-in session), each "at 1 connection / at the most connections" for the CPU.
    /// </summary>
    public static string RenderStoreTargets(IReadOnlyList<BenchResult> results, string baseline)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Store targets (issue 15), x against {baseline}; store CPU per request at each connection count:");
        sb.AppendLine("| contender | CPU read x (<= 0.5) | CPU write x (<= 0.8) | CPU signedin x (<= 0.8) | bytes/session 10x100 x (<= 1.1) | bytes/session signed-in x (<= 1.1) |");
        sb.AppendLine("|---|--:|--:|--:|--:|--:|");
        var connections = results.Select(r => r.Connections).Distinct().Order().ToList();
        foreach (var contender in results.Where(r => r.Contender != baseline && r.RedisCommandsPerRequest is not null).Select(r => r.Contender).Distinct())
        {
            string Cpu(string scenario) => string.Join(" / ", connections.Select(c =>
                Ratio(Find(results, contender, scenario, c)?.StoreCpuUsPerRequest, Find(results, baseline, scenario, c)?.StoreCpuUsPerRequest)));
            string Bytes(string scenario) => Ratio(
                Find(results, contender, scenario, connections[0])?.SessionBytesInStore,
                Find(results, baseline, scenario, connections[0])?.SessionBytesInStore);
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {contender} | {Cpu("read")} | {Cpu("write")} | {Cpu("signedin")} | {Bytes("read")} | {Bytes("signedin")} |");
        }

        return sb.ToString();
    }

    /// <summary>
    /// Issue 15's near-cache targets, for every contender whose name ends in <c>-near</c>, beside the same contender
    /// without it: store round trips per repeated read (&lt;= 0.05), read p50 against the in-process contender's
    /// (&lt;= 1.5x), store round trips per signed-in request (1: the write). Empty when no such contender ran.
    /// </summary>
    public static string RenderNearCacheTargets(IReadOnlyList<BenchResult> results, string inProcess)
    {
        var near = results.Select(r => r.Contender).Distinct().Where(c => c.EndsWith(NearSuffix, StringComparison.Ordinal)).ToList();
        if (near.Count == 0)
        {
            return string.Empty;
        }

        var connections = results.Select(r => r.Connections).Distinct().Order().ToList();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Near-cache targets (issue 15), at {string.Join(" / ", connections)} connections; p50 x against {inProcess}:");
        sb.AppendLine("| contender | read trips/req (<= 0.05) | read p50 x (<= 1.5) | signedin trips/req (1) |");
        sb.AppendLine("|---|--:|--:|--:|");
        foreach (var contender in near.SelectMany(n => (string[])[n[..^NearSuffix.Length], n]).Distinct())
        {
            if (!results.Any(r => r.Contender == contender))
            {
                continue;
            }

            string Trips(string scenario) => string.Join(" / ", connections.Select(c => Num(Find(results, contender, scenario, c)?.StoreRoundTripsPerRequest, "F3")));
            var p50 = string.Join(" / ", connections.Select(c => Ratio(Find(results, contender, "read", c)?.P50Ms, Find(results, inProcess, "read", c)?.P50Ms)));
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {contender} | {Trips("read")} | {p50} | {Trips("signedin")} |");
        }

        return sb.ToString();
    }

    /// <summary>How a near-cache contender's name ends.</summary>
    public const string NearSuffix = "-near";

    private static BenchResult? Find(IReadOnlyList<BenchResult> results, string contender, string scenario, int connections)
        => results.FirstOrDefault(r => r.Contender == contender && r.Scenario == scenario && r.Connections == connections);

    private static string Ratio(double? value, double? baseline)
        => value is { } v && baseline is { } b && b > 0 ? (v / b).ToString("F2", CultureInfo.InvariantCulture) : "-";

    private static string Num(double? value, string format)
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
}
