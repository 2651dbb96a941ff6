using ClusterSession.AspNetCore;
using ClusterSession.Postgres;
using ClusterSession.Redis;
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
/// <param name="redisKeyPrefix">The key prefix when the store is the benchmark's Redis (the scale run writes its sessions there).</param>
/// <param name="encryptValues">Whether attribute values are encrypted at rest (<see cref="ClusterSessionOptions.EncryptValues"/>, with the app's Data Protection).</param>
internal sealed class ClusterSessionContender(
    string name,
    bool usesRedis,
    Action<ClusterSessionOptions, StoreEndpoints> useStore,
    string? postgresTablePrefix = null,
    string? redisKeyPrefix = null,
    bool encryptValues = false) : IContender
{
    /// <summary>The key prefix of every Redis contender: each session has its own random id, so they can share it.</summary>
    public const string BenchRedisKeyPrefix = "bench-cs:";

    public static ClusterSessionContender Memory { get; } = new(
        "clustersession-memory",
        usesRedis: false,
        useStore: (session, _) => session.UseInMemory());

    public string Name => name;

    public bool UsesRedis => usesRedis;

    public string? RedisKeyPrefix => redisKeyPrefix;

    public IReadOnlyList<string> PostgresTables => postgresTablePrefix is null
        ? []
        : [$"\"public\".\"{postgresTablePrefix}sessions\"", $"\"public\".\"{postgresTablePrefix}attributes\""];

    /// <summary>
    /// A contender over the benchmark's Redis; <paramref name="configure"/> adds store options on top of the
    /// harness's (a variant such as a near cache is one catalog line: a name and this callback).
    /// </summary>
    /// <param name="name">The name in the report.</param>
    /// <param name="configure">Store options on top of the harness's.</param>
    /// <param name="encryptValues">Whether values are encrypted at rest (<see cref="ClusterSessionOptions.EncryptValues"/>).</param>
    public static ClusterSessionContender Redis(string name, Action<RedisSessionStoreOptions>? configure = null, bool encryptValues = false) => new(
        name,
        usesRedis: true,
        useStore: (session, stores) => session.UseRedis(options =>
        {
            options.Configuration = stores.RedisConfiguration;
            options.KeyPrefix = BenchRedisKeyPrefix;
            configure?.Invoke(options);
        }),
        redisKeyPrefix: BenchRedisKeyPrefix,
        encryptValues: encryptValues);

    /// <summary>
    /// A contender over the benchmark's PostgreSQL, in tables of its own (prefix from the name, so that the
    /// per-contender table figures stay apart): logged tables (every commit is in the WAL and fsynced,
    /// synchronous_commit on) or UNLOGGED ones (no WAL for the rows, emptied after a crash).
    /// <paramref name="configure"/> adds store options on top of the harness's.
    /// </summary>
    public static ClusterSessionContender Postgres(string name, bool unlogged, Action<PostgresSessionStoreOptions>? configure = null)
    {
        var prefix = "bench_" + string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')) + "_";
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
                configure?.Invoke(options);
            }),
            postgresTablePrefix: prefix);
    }

    public void ConfigureServices(IServiceCollection services, StoreEndpoints stores)
    {
        if (encryptValues)
        {
            // Its key ring goes to the store (ShareDataProtectionKeys), as in an app with cookie authentication.
            services.AddDataProtection();
        }

        services.AddClusterSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromMinutes(20);
            options.Cookie.Name = CookieName;
            options.EncryptValues = encryptValues;
            useStore(options, stores);
        });
    }

    /// <summary>The session cookie; its value is the session id.</summary>
    public const string CookieName = "cluster-session";

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

        app.MapPost("/seed-signedin", async context =>
        {
            var session = await context.GetClusterSessionAsync(context.RequestAborted);
            session.Set(Workload.TicketAttribute, Workload.NewValue(Workload.TicketBytes));
            foreach (var name in Workload.SmallAttributes)
            {
                session.Set(name, Workload.NewValue(Workload.SmallValueBytes));
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

        app.MapPost("/signedin", async context =>
        {
            // What a signed-in request does: the ticket is read (authentication), then one attribute is written.
            var session = await context.GetClusterSessionAsync(context.RequestAborted);
            if (!session.TryGetValue(Workload.TicketAttribute, out var ticket) || ticket.Length != Workload.TicketBytes)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            session.Set(Workload.SignedInWriteTarget, Workload.NewValue(Workload.SmallValueBytes));
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
