using System.Globalization;

namespace ClusterDemo;

/// <summary>One app node: a Kestrel application on 127.0.0.1:P+k serving the whole HTTP contract.</summary>
internal static class DemoNode
{
    public static WebApplication Build(DemoArguments arguments, int k, DemoSessionStore store)
    {
        var name = "node-" + k.ToString(CultureInfo.InvariantCulture);
        var builder = DemoHost.CreateBuilder(arguments.NodeUrl(k));
        var app = builder.Build();
        app.Use((context, next) =>
        {
            // First in the pipeline, so that every response, errors included, names its node.
            context.Response.Headers["X-Served-By"] = name;
            return next(context);
        });
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/", () => Results.Content(
            DemoPage.Render(new DemoPageModel(name, null, null, null, TimeSpan.FromSeconds(arguments.IdleTimeoutSeconds), [], [], [])),
            "text/html; charset=utf-8"));
        _ = store;
        return app;
    }
}
