using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.Bench.Contenders;

/// <summary>
/// ClusterSession through its async API: <c>await context.GetClusterSessionAsync()</c> loads the
/// session once (no sync I/O), reads come from the loaded copy, and the middleware saves only the
/// change set before the response starts. The write-only endpoint uses <c>context.GetClusterSession()</c>,
/// which records the write without loading (one store call per write request). The <c>HttpContext.Session</c> drop-in goes through the
/// same request session, so it costs the same round trips plus an adapter call.
/// </summary>
/// <param name="name">The name in the report.</param>
/// <param name="usesRedis">Whether the store is the benchmark's Redis.</param>
/// <param name="useStore">Chooses the store (<c>UseInMemory()</c>, <c>UseRedis(...)</c>, <c>UsePostgres(...)</c>), given where the stores are.</param>
/// <param name="postgresTablePrefix">The table prefix when the store is the benchmark's PostgreSQL.</param>
internal sealed class ClusterSessionContender(
    string name,
    bool usesRedis,
    Action<ClusterSessionOptions, StoreEndpoints> useStore,
    string? postgresTablePrefix = null) : IContender
{
    public static ClusterSessionContender Redis { get; } = new(
        "clustersession-redis",
        usesRedis: true,
        useStore: (session, stores) => session.UseRedis(options =>
        {
            options.Configuration = stores.RedisConfiguration;
            options.KeyPrefix = "bench-cs:";
        }));

    public static ClusterSessionContender Memory { get; } = new(
        "clustersession-memory",
        usesRedis: false,
        useStore: (session, _) => session.UseInMemory());

    /// <summary>PostgreSQL with logged tables: every commit is in the WAL and fsynced (synchronous_commit on).</summary>
    public static ClusterSessionContender Postgres { get; } = PostgresContender("clustersession-postgres", unlogged: false);

    /// <summary>PostgreSQL with UNLOGGED tables: no WAL for the rows, emptied after a crash.</summary>
    public static ClusterSessionContender PostgresUnlogged { get; } = PostgresContender("clustersession-postgres-unlogged", unlogged: true);

    public string Name => name;

    public bool UsesRedis => usesRedis;

    public IReadOnlyList<string> PostgresTables => postgresTablePrefix is null
        ? []
        : [$"\"public\".\"{postgresTablePrefix}sessions\"", $"\"public\".\"{postgresTablePrefix}attributes\""];

    public void ConfigureServices(IServiceCollection services, StoreEndpoints stores)
    {
        services.AddClusterSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromMinutes(20);
            options.Cookie.Name = "cluster-session";
            useStore(options, stores);
        });
    }

    private static ClusterSessionContender PostgresContender(string name, bool unlogged)
    {
        var prefix = unlogged ? "bench_unlogged_" : "bench_logged_";
        return new(
            name,
            usesRedis: false,
            useStore: (session, stores) => session.UsePostgres(options =>
            {
                options.ConnectionString = stores.PostgresConnectionString
                    ?? throw new InvalidOperationException($"{name} needs the benchmark's PostgreSQL.");
                options.TablePrefix = prefix;
                options.Unlogged = unlogged;
                options.CreateSchemaOnStartup = true;
                // Expiry cleanup is measured on its own (--expiry); here it would only add a stray DELETE a minute.
                options.CleanupInterval = Timeout.InfiniteTimeSpan;
            }),
            postgresTablePrefix: prefix);
    }

    public void Configure(WebApplication app)
    {
        app.UseClusterSession();

        app.MapGet("/read", async context =>
        {
            var session = await context.GetClusterSessionAsync(context.RequestAborted);
            context.Response.StatusCode = session.TryGetValue(Workload.HotAttribute, out var value) && value.Length == Workload.ValueBytes
                ? StatusCodes.Status200OK
                : StatusCodes.Status404NotFound;
        });

        app.MapPost("/write", context =>
        {
            // Write-only: no load; the change is saved with one store call before the response starts.
            context.GetClusterSession().Set(Workload.WriteTarget(context), Workload.NewValue());
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        });

        app.MapPost("/seed", async context =>
        {
            var session = await context.GetClusterSessionAsync(context.RequestAborted);
            for (var i = 0; i < Workload.AttributeCount; i++)
            {
                session.Set(Workload.AttributeName(i), Workload.NewValue());
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

        app.MapGet("/count", async context =>
        {
            var session = await context.GetClusterSessionAsync(context.RequestAborted);
            var count = session.Keys.Count(k => k.StartsWith(Workload.LostUpdatePrefix, StringComparison.Ordinal));
            await context.Response.WriteAsync(count.ToString(System.Globalization.CultureInfo.InvariantCulture), context.RequestAborted);
        });
    }
}
