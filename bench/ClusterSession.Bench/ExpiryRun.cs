using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using ClusterSession.Bench.Contenders;
using ClusterSession.Bench.Postgres;
using ClusterSession.Postgres;
using ClusterSession.Redis;

namespace ClusterSession.Bench;

/// <summary>
/// What expiry costs at N sessions (default 100,000) of the benchmark's shape (10 attributes of 100 bytes).
/// Redis: the sessions get a TTL and the server drops them; measured are memory before and after, how long
/// the last key outlives its TTL, Redis CPU, and the commands the app sends meanwhile (through the proxy).
/// PostgreSQL (logged and UNLOGGED): the store's CleanupExpiredAsync over N expired rows, through the
/// latency proxy; measured are time, batches (round trips), WAL, dead tuples and size after, and after VACUUM.
/// </summary>
internal static class ExpiryRun
{
    private const int Workers = 64;

    public static async Task<string> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var n = options.ExpirySessions;
        var facts = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["sessions"] = n,
            ["rtt_ms"] = options.RttMs,
            ["redis"] = await RedisAsync(n, options.RttMs, output, cancellationToken),
            ["postgres"] = await PostgresAsync(n, options.RttMs, unlogged: false, output, cancellationToken),
            ["postgres_unlogged"] = await PostgresAsync(n, options.RttMs, unlogged: true, output, cancellationToken),
        };
        var json = JsonSerializer.Serialize(facts, BenchReport.IndentedJson);
        await output.WriteLineAsync(json);
        return json;
    }

    private static async Task<Dictionary<string, object?>> RedisAsync(int n, double rttMs, TextWriter output, CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync(cancellationToken);
        await using var probe = await RedisProbe.ConnectAsync(redis.Port);
        await using var proxy = new LatencyProxy(new IPEndPoint(IPAddress.Loopback, redis.Port), rttMs);
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = $"127.0.0.1:{proxy.Port},abortConnect=false,syncTimeout=30000,asyncTimeout=30000",
            KeyPrefix = "exp:",
            OperationTimeout = TimeSpan.FromSeconds(30),
        });
        _ = await store.CountAsync(cancellationToken); // connect first

        // Long enough for every session to be created before the first expires, short enough to wait for.
        var ttl = TimeSpan.FromSeconds(3 + (n / 2000.0));
        var memoryBefore = long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);
        var create = Stopwatch.StartNew();
        await CreateSessionsAsync(store, n, ttl, TimeProvider.System, cancellationToken);
        create.Stop();
        var createdAt = Stopwatch.GetTimestamp();
        var keys = await probe.DbSizeAsync();
        var memoryAfter = long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"redis: {n} sessions created in {create.Elapsed.TotalSeconds:F1} s, {keys} keys, TTL {ttl.TotalSeconds:F0} s; waiting for them to expire"));

        var statsBefore = await probe.InfoAsync("stats");
        var cpuBefore = await RedisCpuSecondsAsync(probe);
        var appCommandsBefore = proxy.CommandsToServer;
        var deadline = Stopwatch.StartNew();
        long left;
        while ((left = await probe.DbSizeAsync()) > 0 && deadline.Elapsed < ttl + TimeSpan.FromSeconds(60))
        {
            await Task.Delay(100, cancellationToken);
        }

        var lastGoneAfterTtl = Stopwatch.GetElapsedTime(createdAt) - ttl;
        var statsAfter = await probe.InfoAsync("stats");
        var cpuAfter = await RedisCpuSecondsAsync(probe);
        var memoryExpired = long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);
        return new(StringComparer.Ordinal)
        {
            ["create_seconds"] = Math.Round(create.Elapsed.TotalSeconds, 2),
            ["keys_after_create"] = keys,
            ["ttl_seconds"] = ttl.TotalSeconds,
            ["used_memory_before"] = memoryBefore,
            ["used_memory_after_create"] = memoryAfter,
            ["bytes_per_session"] = (memoryAfter - memoryBefore) / n,
            ["keys_left"] = left,
            ["all_gone_seconds_after_last_ttl"] = Math.Round(lastGoneAfterTtl.TotalSeconds, 2),
            ["expired_keys"] = Delta(statsBefore, statsAfter, "expired_keys"),
            ["redis_cpu_seconds_while_expiring"] = Math.Round(cpuAfter - cpuBefore, 3),
            ["used_memory_after_expiry"] = memoryExpired,
            ["app_commands_while_expiring"] = proxy.CommandsToServer - appCommandsBefore,
        };
    }

    private static async Task<Dictionary<string, object?>> PostgresAsync(int n, double rttMs, bool unlogged, TextWriter output, CancellationToken cancellationToken)
    {
        var name = unlogged ? "postgres-unlogged" : "postgres";
        await using var postgres = await PostgresServerProcess.StartAsync(cancellationToken);
        await using var probe = new PostgresProbe(postgres.ConnectionString);
        await using var proxy = new LatencyProxy(new IPEndPoint(IPAddress.Loopback, postgres.Port), rttMs, static () => new PostgresRoundTripCounter());
        var prefix = "exp_";
        var tables = new[] { $"\"public\".\"{prefix}sessions\"", $"\"public\".\"{prefix}attributes\"" };

        // Loading is not what is measured: a direct connection without waiting for fsync makes it quick.
        var create = Stopwatch.StartNew();
        await using (var loader = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = postgres.ConnectionString + ";Options=-c synchronous_commit=off",
            TablePrefix = prefix,
            Unlogged = unlogged,
            CleanupInterval = Timeout.InfiniteTimeSpan,
        }))
        {
            await loader.CreateSchemaAsync(cancellationToken);
            await CreateSessionsAsync(loader, n, TimeSpan.FromMinutes(20), TimeProvider.System, cancellationToken);
        }

        create.Stop();
        await probe.ExecuteAsync("CHECKPOINT", cancellationToken);
        var bytesBefore = await probe.TotalBytesAsync(tables, cancellationToken);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{name}: {n} sessions created in {create.Elapsed.TotalSeconds:F1} s ({bytesBefore / 1024 / 1024} MiB); cleaning up an hour later"));

        // The cleaning app instance's clock is an hour ahead: every session is expired to it, none was deleted yet.
        var later = new ShiftedTimeProvider(TimeSpan.FromHours(1));
        var cleaner = new PostgresSessionStore(
            new PostgresSessionStoreOptions
            {
                ConnectionString = PostgresServerProcess.ConnectionStringFor(proxy.Port),
                TablePrefix = prefix,
                Unlogged = unlogged,
                CleanupInterval = Timeout.InfiniteTimeSpan,
            },
            later);
        _ = await cleaner.CountAsync(cancellationToken); // connect and prepare first
        var walBefore = await probe.WalPositionAsync(cancellationToken);
        var tripsBefore = proxy.CommandsToServer;
        var bytesSentBefore = proxy.BytesToServer;
        var cleanup = Stopwatch.StartNew();
        var deleted = await cleaner.CleanupExpiredAsync(cancellationToken);
        cleanup.Stop();
        var trips = proxy.CommandsToServer - tripsBefore;
        var bytesSent = proxy.BytesToServer - bytesSentBefore;
        var wal = await probe.WalPositionAsync(cancellationToken) - walBefore;
        await cleaner.DisposeAsync();
        await BenchHarness.WaitForNoClientsAsync(probe, cancellationToken);
        var deadTuples = await probe.DeadTuplesAsync(tables, cancellationToken);
        var bytesAfter = await probe.TotalBytesAsync(tables, cancellationToken);
        var vacuum = Stopwatch.StartNew();
        foreach (var table in tables)
        {
            await probe.ExecuteAsync($"VACUUM {table}", cancellationToken);
        }

        vacuum.Stop();
        var bytesAfterVacuum = await probe.TotalBytesAsync(tables, cancellationToken);
        return new(StringComparer.Ordinal)
        {
            ["create_seconds"] = Math.Round(create.Elapsed.TotalSeconds, 2),
            ["table_bytes_before"] = bytesBefore,
            ["bytes_per_session"] = bytesBefore / n,
            ["deleted"] = deleted,
            ["cleanup_seconds"] = Math.Round(cleanup.Elapsed.TotalSeconds, 2),
            ["cleanup_round_trips"] = trips,
            ["cleanup_bytes_sent"] = bytesSent,
            ["wal_bytes"] = wal,
            ["wal_bytes_per_session"] = wal / Math.Max(1, deleted),
            ["dead_tuples_after"] = deadTuples,
            ["table_bytes_after"] = bytesAfter,
            ["vacuum_seconds"] = Math.Round(vacuum.Elapsed.TotalSeconds, 2),
            ["table_bytes_after_vacuum"] = bytesAfterVacuum,
        };
    }

    /// <summary>Creates n sessions of the benchmark's shape with <see cref="Workers"/> concurrent callers.</summary>
    internal static async Task CreateSessionsAsync(ISessionStore store, int n, TimeSpan idleTimeout, TimeProvider clock, CancellationToken cancellationToken)
    {
        var next = -1;
        var workers = Enumerable.Range(0, Workers).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) < n)
            {
                var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                for (var i = 0; i < Workload.AttributeCount; i++)
                {
                    attributes[Workload.AttributeName(i)] = Workload.NewValue();
                }

                var session = SessionSnapshot.CreateNew(SessionId.Create(), clock.GetUtcNow(), idleTimeout, TimeSpan.FromHours(8), attributes);
                if (!await store.CreateAsync(session, cancellationToken))
                {
                    throw new InvalidOperationException("A new session id collided with an existing one.");
                }
            }
        });
        await Task.WhenAll(workers);
    }

    private static async Task<double> RedisCpuSecondsAsync(RedisProbe probe)
    {
        var cpu = await probe.InfoAsync("cpu");
        return double.Parse(cpu["used_cpu_sys"], CultureInfo.InvariantCulture) + double.Parse(cpu["used_cpu_user"], CultureInfo.InvariantCulture);
    }

    private static long Delta(Dictionary<string, string> before, Dictionary<string, string> after, string field)
        => long.Parse(after[field], CultureInfo.InvariantCulture) - long.Parse(before[field], CultureInfo.InvariantCulture);

    /// <summary>The system clock moved by a fixed offset: an app instance that looks at the data later.</summary>
    private sealed class ShiftedTimeProvider(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + offset;
    }
}
