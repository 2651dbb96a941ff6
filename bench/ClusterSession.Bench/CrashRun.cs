using System.Globalization;
using System.Text.Json;
using ClusterSession.Bench.Postgres;
using ClusterSession.Postgres;
using ClusterSession.Redis;

namespace ClusterSession.Bench;

/// <summary>
/// What survives a clean restart and a crash, observed rather than believed: 1,000 sessions are
/// created in each store, the server is stopped cleanly (Redis SHUTDOWN NOSAVE, <c>pg_ctl stop -m fast</c>)
/// or killed (Redis SIGKILL, <c>pg_ctl stop -m immediate</c>: no checkpoint, crash recovery on start),
/// started again on the same port, and the sessions are counted. Redis runs as in the benchmark: no
/// RDB snapshots, no AOF. PostgreSQL runs with fsync and synchronous_commit on.
/// </summary>
internal static class CrashRun
{
    private const int Sessions = 1000;

    public static async Task<string> RunAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var facts = new Dictionary<string, object?>(StringComparer.Ordinal) { ["sessions"] = Sessions };
        facts["redis"] = await RedisAsync(output, cancellationToken);
        foreach (var (key, value) in await PostgresAsync(output, cancellationToken))
        {
            facts[key] = value;
        }

        var json = JsonSerializer.Serialize(facts, BenchReport.IndentedJson);
        await output.WriteLineAsync(json);
        return json;
    }

    private static async Task<Dictionary<string, long>> RedisAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        var redis = await RedisServerProcess.StartAsync(cancellationToken);
        var port = redis.Port;
        try
        {
            foreach (var stop in new[] { "clean_restart", "crash" })
            {
                await using (var store = Store(port))
                {
                    await ExpiryRun.CreateSessionsAsync(store, Sessions, TimeSpan.FromMinutes(20), TimeProvider.System, cancellationToken);
                    result[$"before_{stop}"] = await store.CountAsync(cancellationToken);
                }

                if (stop == "clean_restart")
                {
                    await using var probe = await RedisProbe.ConnectAsync(port);
                    await probe.ShutdownAsync();
                }

                redis.Dispose(); // SIGKILL: after SHUTDOWN there is nothing left to kill
                redis = await RedisServerProcess.StartAsync(cancellationToken, port);
                await using (var store = Store(port))
                {
                    result[$"after_{stop}"] = await store.CountAsync(cancellationToken);
                }

                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"redis {stop}: {result[$"before_{stop}"]} sessions before, {result[$"after_{stop}"]} after"));
            }
        }
        finally
        {
            redis.Dispose();
        }

        return result;

        static RedisSessionStore Store(int port) => new(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{port},abortConnect=false", KeyPrefix = "crash:" });
    }

    private static async Task<Dictionary<string, Dictionary<string, long>>> PostgresAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal)
        {
            ["postgres"] = new(StringComparer.Ordinal),
            ["postgres_unlogged"] = new(StringComparer.Ordinal),
        };
        await using var postgres = await PostgresServerProcess.StartAsync(cancellationToken);
        foreach (var (stop, mode) in new[] { ("clean_restart", "fast"), ("crash", "immediate") })
        {
            foreach (var (name, figures) in result)
            {
                await using var store = Store(postgres, name);
                await store.CreateSchemaAsync(cancellationToken);
                await ExpiryRun.CreateSessionsAsync(store, Sessions, TimeSpan.FromMinutes(20), TimeProvider.System, cancellationToken);
                figures[$"before_{stop}"] = await store.CountAsync(cancellationToken);
            }

            await postgres.StopAsync(mode, cancellationToken);
            await postgres.StartServerAsync(cancellationToken);
            foreach (var (name, figures) in result)
            {
                await using var store = Store(postgres, name);
                figures[$"after_{stop}"] = await store.CountAsync(cancellationToken);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{name} {stop} (pg_ctl stop -m {mode}): {figures[$"before_{stop}"]} sessions before, {figures[$"after_{stop}"]} after"));
            }
        }

        return result;

        static PostgresSessionStore Store(PostgresServerProcess server, string name) => new(new PostgresSessionStoreOptions
        {
            // No pooling: every phase talks to a freshly started server.
            ConnectionString = server.ConnectionString + ";Pooling=false",
            TablePrefix = name == "postgres" ? "crash_logged_" : "crash_unlogged_",
            Unlogged = name != "postgres",
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });
    }
}
