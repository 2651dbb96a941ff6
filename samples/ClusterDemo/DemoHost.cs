namespace ClusterDemo;

/// <summary>What every web application of the demo (nodes and load balancer) has in common.</summary>
internal static class DemoHost
{
    public static WebApplicationBuilder CreateBuilder(string url)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(DemoHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseUrls(url);
        // Program owns Ctrl+C / SIGTERM for all hosts at once, so no host may stop on its own.
        builder.Services.AddSingleton<IHostLifetime, ProgramOwnedLifetime>();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // /healthz answers with the status, and the start-up wait prints what it waits for; the health check
        // service would also log every answer that is not healthy, twice a second while the demo waits.
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None);
        return builder;
    }

    private sealed class ProgramOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
