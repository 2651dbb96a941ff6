using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.Bench.Contenders;

/// <summary>
/// The built-in: <c>AddSession()</c> over <c>AddStackExchangeRedisCache()</c>, used as its
/// documentation recommends: <c>await LoadAsync()</c> before touching the session (no sync I/O),
/// the middleware commits at the end of the request.
/// </summary>
internal sealed class AspNetCoreSessionContender : IContender
{
    public const string ContenderName = "aspnetcore-session-redis";

    public string Name => ContenderName;

    public bool UsesRedis => true;

    public IReadOnlyList<string> PostgresTables => [];

    public void ConfigureServices(IServiceCollection services, StoreEndpoints stores)
    {
        services.AddStackExchangeRedisCache(options =>
        {
            options.Configuration = stores.RedisConfiguration;
            options.InstanceName = "bench-aspnet:";
        });
        services.AddSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromMinutes(20);
            options.Cookie.Name = "aspnet-session";
            options.Cookie.IsEssential = true;
        });
    }

    public void Configure(WebApplication app)
    {
        app.UseSession();

        app.MapGet("/read", async context =>
        {
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
            context.Response.StatusCode = session.TryGetValue(Workload.HotAttribute, out var value) && value.Length == Workload.ValueBytes
                ? StatusCodes.Status200OK
                : StatusCodes.Status404NotFound;
        });

        app.MapPost("/write", async context =>
        {
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
            session.Set(Workload.WriteTarget(context), Workload.NewValue());
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

        app.MapPost("/seed", async context =>
        {
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
            for (var i = 0; i < Workload.AttributeCount; i++)
            {
                session.Set(Workload.AttributeName(i), Workload.NewValue());
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

        app.MapPost("/seed-signedin", async context =>
        {
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
            session.Set(Workload.TicketAttribute, Workload.NewValue(Workload.TicketBytes));
            foreach (var name in Workload.SmallAttributes)
            {
                session.Set(name, Workload.NewValue(Workload.SmallValueBytes));
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

        app.MapPost("/signedin", async context =>
        {
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
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
            var session = context.Session;
            await session.LoadAsync(context.RequestAborted);
            var count = session.Keys.Count(k => k.StartsWith(Workload.LostUpdatePrefix, StringComparison.Ordinal));
            await context.Response.WriteAsync(count.ToString(System.Globalization.CultureInfo.InvariantCulture), context.RequestAborted);
        });
    }
}
