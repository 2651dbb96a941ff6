using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using ClusterSession.Redis;
using Microsoft.AspNetCore.Authentication;

namespace ClusterSession.Bench;

/// <summary>
/// Redis memory per session (docs/operations.md): N sessions of each shape written through the Redis store into
/// a fresh redis-server (the harness's, no persistence, no maxmemory), each shape after a FLUSHALL, measured as the growth of
/// <c>INFO memory</c> <c>used_memory</c> divided by N, beside <c>MEMORY USAGE key SAMPLES 0</c> of one session's
/// hash (and of one principal index for the signed-in shape). No latency proxy: only the bytes matter here.
/// Every shape is written twice: with the server's default <c>hash-max-listpack-value</c> (64: a hash with a
/// longer value is a hash table) and with it raised to 1,024 (small hashes stay compact listpacks).
/// </summary>
internal static class MemoryRun
{
    private const int Workers = 32;

    /// <summary>What a signed-in browser sends as User-Agent; ClusterSession keeps it (up to 256 chars) for the session list.</summary>
    private const string UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    private static readonly Shape[] Shapes =
    [
        new("anonymous-small", "3 attributes of 20 bytes (a cart id, a culture, a flag), no principal", SignedIn: false, AppAttributes: 3, ValueBytes: 20),
        new("signed-in", "cookie-authentication ticket (name + 4 claims, TicketSerializer) and User-Agent kept by ClusterSession, 3 attributes of 20 bytes, a principal (one index per user)", SignedIn: true, AppAttributes: 3, ValueBytes: 20),
        new("bench-10x100", "the benchmark's shape: 10 attributes of 100 bytes, no principal", SignedIn: false, AppAttributes: 10, ValueBytes: 100),
    ];

    public static async Task<string> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var n = options.MemorySessions;
        using var redis = await RedisServerProcess.StartAsync(cancellationToken);
        await using var probe = await RedisProbe.ConnectAsync(redis.Port);
        var server = await probe.InfoAsync("server");
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = $"127.0.0.1:{redis.Port},abortConnect=false,syncTimeout=30000,asyncTimeout=30000",
            KeyPrefix = "mem:",
            OperationTimeout = TimeSpan.FromSeconds(30),
        });
        _ = await store.CountAsync(cancellationToken); // connect and load the scripts first

        var ticket = TicketBytes();
        var results = new List<Dictionary<string, object?>>();
        foreach (var (listpackValue, shape) in ((string?[])[null, "1024"]).SelectMany(v => Shapes.Select(s => (v, s))))
        {
            if (listpackValue is not null)
            {
                await probe.ConfigSetAsync("hash-max-listpack-value", listpackValue);
            }

            // Each shape starts from an empty keyspace, so the main dictionary's growth is charged to every shape alike.
            await probe.FlushAllAsync();
            var before = await UsedMemoryAsync(probe);
            var keysBefore = await probe.KeysAsync();
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, Workers).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    // Principals stay distinct across both passes, so that each signed-in session adds its own index.
                    var session = shape.Create(listpackValue is null ? i : n + i, ticket);
                    if (!await store.CreateAsync(session, cancellationToken))
                    {
                        throw new InvalidOperationException("A new session id collided with an existing one.");
                    }
                }
            }));
            var after = await UsedMemoryAsync(probe);
            var added = (await probe.KeysAsync()).Except(keysBefore).ToList();
            var sessionKey = added.First(k => k.StartsWith("mem:s3:", StringComparison.Ordinal));
            var indexKey = added.FirstOrDefault(k => k.StartsWith("mem:u:", StringComparison.Ordinal));
            var result = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["shape"] = shape.Name,
                ["hash_max_listpack_value"] = listpackValue ?? "default (64)",
                ["description"] = shape.Description,
                ["sessions"] = n,
                ["keys_added"] = added.Count,
                ["attribute_bytes_per_session"] = shape.AttributeBytes(ticket),
                ["used_memory_before"] = before,
                ["used_memory_after"] = after,
                ["used_memory_bytes_per_session"] = (after - before) / n,
                ["memory_usage_session_hash"] = await probe.MemoryUsageAsync(sessionKey),
                ["memory_usage_principal_index"] = indexKey is null ? null : await probe.MemoryUsageAsync(indexKey),
            };
            results.Add(result);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{shape.Name}, hash-max-listpack-value {listpackValue ?? "default"}: {n} sessions, {added.Count} keys, {(after - before) / n} bytes per session (used_memory), one hash {result["memory_usage_session_hash"]} bytes (MEMORY USAGE)"));
        }

        var facts = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["redis_version"] = server.GetValueOrDefault("redis_version"),
            ["mem_allocator"] = (await probe.InfoAsync("memory")).GetValueOrDefault("mem_allocator"),
            ["shapes"] = results,
        };
        var json = JsonSerializer.Serialize(facts, BenchReport.IndentedJson);
        await output.WriteLineAsync(json);
        return json;
    }

    private static async Task<long> UsedMemoryAsync(RedisProbe probe)
        => long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);

    /// <summary>A cookie-authentication ticket as ClusterSession stores it: TicketSerializer of a user with a name and four claims.</summary>
    private static byte[] TicketBytes()
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
                new Claim(ClaimTypes.Name, "alice@example.com"),
                new Claim(ClaimTypes.Email, "alice@example.com"),
                new Claim(ClaimTypes.Role, "customer"),
            ],
            "Cookies");
        var properties = new AuthenticationProperties { IssuedUtc = DateTimeOffset.UtcNow, ExpiresUtc = DateTimeOffset.UtcNow.AddHours(8), IsPersistent = false };
        return TicketSerializer.Default.Serialize(new AuthenticationTicket(new ClaimsPrincipal(identity), properties, "Cookies"));
    }

    private sealed record Shape(string Name, string Description, bool SignedIn, int AppAttributes, int ValueBytes)
    {
        public SessionSnapshot Create(int index, byte[] ticket)
        {
            var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            for (var a = 0; a < AppAttributes; a++)
            {
                var value = new byte[ValueBytes];
                Random.Shared.NextBytes(value);
                attributes["a" + a.ToString(CultureInfo.InvariantCulture)] = value;
            }

            string? principal = null;
            if (SignedIn)
            {
                // The names ClusterSession.AspNetCore gives its own attributes (ReservedNames: "__cs." + "ticket", "ua").
                attributes["__cs.ticket"] = ticket;
                attributes["__cs.ua"] = Encoding.UTF8.GetBytes(UserAgent);
                principal = "user" + index.ToString("D6", CultureInfo.InvariantCulture) + "@example.com";
            }

            return SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(8), attributes, principal);
        }

        public int AttributeBytes(byte[] ticket)
            => (AppAttributes * ValueBytes) + (SignedIn ? ticket.Length + Encoding.UTF8.GetByteCount(UserAgent) : 0);
    }
}
