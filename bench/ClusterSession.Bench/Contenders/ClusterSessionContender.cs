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
/// <param name="addStore">Registers the store, given the Redis configuration string (the integration has no UseRedis yet).</param>
/// <param name="configure">Further options, e.g. <c>UseInMemory()</c>.</param>
internal sealed class ClusterSessionContender(
    string name,
    bool usesRedis,
    Action<IServiceCollection, string>? addStore = null,
    Action<ClusterSessionOptions>? configure = null) : IContender
{
    public static ClusterSessionContender Redis { get; } = new(
        "clustersession-redis",
        usesRedis: true,
        addStore: (services, redisConfiguration) => services.AddRedisSessionStore(options =>
        {
            options.Configuration = redisConfiguration;
            options.KeyPrefix = "bench-cs:";
        }));

    public static ClusterSessionContender Memory { get; } = new(
        "clustersession-memory",
        usesRedis: false,
        configure: options => options.UseInMemory());

    public string Name => name;

    public bool UsesRedis => usesRedis;

    public void ConfigureServices(IServiceCollection services, string redisConfiguration)
    {
        addStore?.Invoke(services, redisConfiguration);
        services.AddClusterSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromMinutes(20);
            options.Cookie.Name = "cluster-session";
            configure?.Invoke(options);
        });
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
