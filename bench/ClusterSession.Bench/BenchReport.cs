using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterSession.Bench;

/// <summary>The JSON file: exactly the fields the issue names, null where a figure does not apply.</summary>
internal sealed record BenchReport(
    [property: JsonPropertyName("rtt_ms")] double RttMs,
    [property: JsonPropertyName("results")] IReadOnlyList<BenchResult> Results)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

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
    [property: JsonPropertyName("lost_updates")] int? LostUpdates);

/// <summary>The console table, with ratios against the baseline contender.</summary>
internal static class ReportTable
{
    public static string Render(IReadOnlyList<BenchResult> results, string baseline)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Ratios (x) are against {baseline} in the same scenario and connection count.");
        sb.AppendLine("| contender | scenario | conns | req/s | x | p50 ms | x | p99 ms | x | Redis cmds/req | Redis bytes/req | x | session bytes in Redis | lost updates |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in results)
        {
            var b = results.FirstOrDefault(x => x.Contender == baseline && x.Scenario == r.Scenario && x.Connections == r.Connections);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Contender} | {r.Scenario} | {r.Connections} | {r.Rps:F0} | {Ratio(r.Rps, b?.Rps)} | {r.P50Ms:F3} | {Ratio(r.P50Ms, b?.P50Ms)} | {r.P99Ms:F3} | {Ratio(r.P99Ms, b?.P99Ms)} | {Num(r.RedisCommandsPerRequest, "F2")} | {Num(r.RedisBytesPerRequest, "F0")} | {Ratio(r.RedisBytesPerRequest, b?.RedisBytesPerRequest)} | {Num(r.SessionBytesInRedis, "F0")} | {Num(r.LostUpdates, "F0")} |");
        }

        return sb.ToString();
    }

    private static string Ratio(double? value, double? baseline)
        => value is { } v && baseline is { } b && b > 0 ? (v / b).ToString("F2", CultureInfo.InvariantCulture) : "-";

    private static string Num(double? value, string format)
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
}
