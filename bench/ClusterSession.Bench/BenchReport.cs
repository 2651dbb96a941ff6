using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterSession.Bench;

/// <summary>
/// The JSON file: the fields issue 7 names, then the store-neutral and PostgreSQL fields of issue 8
/// (added after, never renamed), null where a figure does not apply. For Redis a store round trip is a
/// top-level command (the clients here do not pipeline one request's commands); for PostgreSQL it is
/// a Sync or simple Query message.
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
    [property: JsonPropertyName("table_bytes_after_writes")] long? TableBytesAfterWrites);

/// <summary>The console table, with ratios against the baseline contender.</summary>
internal static class ReportTable
{
    public static string Render(IReadOnlyList<BenchResult> results, string baseline)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Ratios (x) are against {baseline} in the same scenario and connection count.");
        sb.AppendLine("| contender | scenario | conns | req/s | x | p50 ms | x | p99 ms | x | store trips/req | store bytes/req | x | session bytes in store | WAL bytes/req | lost updates |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in results)
        {
            var b = results.FirstOrDefault(x => x.Contender == baseline && x.Scenario == r.Scenario && x.Connections == r.Connections);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Contender} | {r.Scenario} | {r.Connections} | {r.Rps:F0} | {Ratio(r.Rps, b?.Rps)} | {r.P50Ms:F3} | {Ratio(r.P50Ms, b?.P50Ms)} | {r.P99Ms:F3} | {Ratio(r.P99Ms, b?.P99Ms)} | {Num(r.StoreRoundTripsPerRequest, "F2")} | {Num(r.StoreBytesPerRequest, "F0")} | {Ratio(r.StoreBytesPerRequest, b?.StoreBytesPerRequest)} | {Num(r.SessionBytesInStore, "F0")} | {Num(r.WalBytesPerRequest, "F0")} | {Num(r.LostUpdates, "F0")} |");
        }

        return sb.ToString();
    }

    private static string Ratio(double? value, double? baseline)
        => value is { } v && baseline is { } b && b > 0 ? (v / b).ToString("F2", CultureInfo.InvariantCulture) : "-";

    private static string Num(double? value, string format)
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
}
