using System.Globalization;
using System.Text;
using ClusterSession;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Mvc;

namespace ClusterDemo;

/// <summary>One app node: a Kestrel application on 127.0.0.1:P+k serving the whole HTTP contract.</summary>
internal static class DemoNode
{
    /// <summary>User-set attributes live under this prefix, apart from the cart and anything the library keeps.</summary>
    private const string AttributePrefix = "attr:";
    private const string CartKey = "cart";
    private const int MaxAttributeBytes = 16 * 1024;

    public static WebApplication Build(DemoArguments arguments, int k, DemoSessionStore store)
    {
        var node = "node-" + k.ToString(CultureInfo.InvariantCulture);
        var builder = DemoHost.CreateBuilder(arguments.NodeUrl(k));
        builder.Services.AddClusterSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromSeconds(arguments.IdleTimeoutSeconds);
            store.Configure(options);
        });

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            // First in the pipeline, so that every response, errors included, names its node.
            context.Response.Headers["X-Served-By"] = node;
            try
            {
                await next(context);
            }
            catch (ClusterSessionException ex) when (!context.Response.HasStarted)
            {
                // What the session layer did not turn into a status itself: say what happened, keep the node header.
                var status = ex switch
                {
                    SessionStoreUnavailableException => StatusCodes.Status503ServiceUnavailable,
                    SessionLimitExceededException => StatusCodes.Status400BadRequest,
                    _ => StatusCodes.Status409Conflict,
                };
                context.Response.Clear();
                context.Response.Headers["X-Served-By"] = node;
                await Results.Json(new { error = ex.Message }, statusCode: status).ExecuteAsync(context);
            }
        });
        app.UseClusterSession();

        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/", (HttpContext context, ISessionManager manager) => PageAsync(context, manager, node, arguments));
        app.MapPost("/api/login", (HttpContext context, [FromBody] LoginRequest request) => LoginAsync(context, request, node));
        app.MapGet("/api/me", (HttpContext context, CancellationToken _) => MeAsync(context, node));
        app.MapPut("/api/attributes/{name}", SetAttributeAsync);
        app.MapGet("/api/attributes", async (HttpContext context, CancellationToken cancellationToken)
            => Results.Json(ReadAttributes(await context.GetClusterSessionAsync(cancellationToken))));
        app.MapPost("/api/cart/items", AddToCartAsync);
        app.MapGet("/api/cart", async (HttpContext context, CancellationToken cancellationToken)
            => Results.Json(ReadCart(await context.GetClusterSessionAsync(cancellationToken))));
        app.MapPost("/api/logout", (HttpContext context, CancellationToken _) => LogoutAsync(context));
        app.MapGet("/api/sessions", ListSessionsAsync);
        app.MapDelete("/api/sessions/{handle}", RevokeSessionAsync);
        return app;
    }

    private static async Task<IResult> PageAsync(HttpContext context, ISessionManager manager, string node, DemoArguments arguments)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        var user = session.Principal;
        IReadOnlyList<DemoSessionInfo> sessions = user is null ? [] : await ListAsync(context, manager, user);
        var model = new DemoPageModel(
            node,
            user,
            session.IsNew ? null : session.CreatedAt,
            session.IsNew ? null : session.LastAccessedAt,
            session.IsNew ? TimeSpan.FromSeconds(arguments.IdleTimeoutSeconds) : session.IdleTimeout,
            [.. ReadAttributes(session)],
            ReadCart(session),
            sessions);
        context.Response.Headers.CacheControl = "no-store";
        return Results.Content(DemoPage.Render(model), "text/html; charset=utf-8");
    }

    private static async Task<IResult> LoginAsync(HttpContext context, LoginRequest request, string node)
    {
        if (!DemoUsers.Verify(request.User, request.Password))
        {
            return Results.Json(new { error = "Unknown user or wrong password (try alice, bob or carol with password demo)." }, statusCode: StatusCodes.Status401Unauthorized);
        }

        var session = await context.GetClusterSessionAsync(context.RequestAborted);

        // A new id at login defeats session fixation; the attributes set before login come along.
        await session.RenewIdAsync(context.RequestAborted);

        // Binding the principal also records this request's User-Agent, which ISessionManager lists per device.
        session.Principal = request.User;
        return Results.Json(new { user = request.User, node });
    }

    private static async Task<IResult> MeAsync(HttpContext context, string node)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        if (session.Principal is not { } user)
        {
            return NotLoggedIn();
        }

        return Results.Json(new
        {
            user,
            node,
            createdAt = session.CreatedAt,
            lastAccessedAt = session.LastAccessedAt,
            idleTimeoutSeconds = (long)session.IdleTimeout.TotalSeconds,
        });
    }

    private static async Task<IResult> SetAttributeAsync(HttpContext context, string name)
    {
        var body = await ReadBodyAsync(context.Request, MaxAttributeBytes, context.RequestAborted);
        if (body is null)
        {
            return Results.Json(new { error = $"An attribute value is at most {MaxAttributeBytes} bytes of UTF-8 text." }, statusCode: StatusCodes.Status413PayloadTooLarge);
        }

        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        try
        {
            session.Set(AttributePrefix + name, body);
        }
        catch (SessionLimitExceededException ex)
        {
            return Results.Json(new { error = ex.Message }, statusCode: StatusCodes.Status400BadRequest);
        }

        return Results.NoContent();
    }

    private static async Task<IResult> AddToCartAsync(HttpContext context, [FromBody] CartItemRequest request)
    {
        if (string.IsNullOrEmpty(request.Item) || request.Item.Length > 200)
        {
            return Results.Json(new { error = "Send {\"item\":\"...\"} with 1 to 200 characters." }, statusCode: StatusCodes.Status400BadRequest);
        }

        var session = await context.GetClusterSessionAsync(context.RequestAborted);

        // Atomic in the store: two requests adding at once both land, whichever node serves them.
        var cart = await session.UpdateAsync<List<string>>(CartKey, items => [.. items ?? [], request.Item], cancellationToken: context.RequestAborted);
        return Results.Json(cart, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> LogoutAsync(HttpContext context)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        await session.InvalidateAsync(context.RequestAborted);
        return Results.NoContent();
    }

    private static async Task<IResult> ListSessionsAsync(HttpContext context, ISessionManager manager)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        if (session.Principal is not { } user)
        {
            return NotLoggedIn();
        }

        var sessions = await ListAsync(context, manager, user);
        return Results.Json(sessions.Select(s => new
        {
            handle = s.Handle,
            createdAt = s.CreatedAt,
            lastAccessedAt = s.LastAccessedAt,
            userAgent = s.UserAgent,
            current = s.Current,
        }));
    }

    private static async Task<IResult> RevokeSessionAsync(HttpContext context, ISessionManager manager, string handle)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        if (session.Principal is not { } user)
        {
            return NotLoggedIn();
        }

        // Scoped to the signed-in user: a handle of someone else's session revokes nothing.
        return await manager.RevokeAsync(user, handle, context.RequestAborted)
            ? Results.NoContent()
            : Results.Json(new { error = "No session of yours has that handle." }, statusCode: StatusCodes.Status404NotFound);
    }

    private static async Task<IReadOnlyList<DemoSessionInfo>> ListAsync(HttpContext context, ISessionManager manager, string user)
    {
        var sessions = await manager.ListAsync(user, context, context.RequestAborted);
        return [.. sessions
            .OrderByDescending(s => s.IsCurrent)
            .ThenByDescending(s => s.LastAccessedAt)
            .Select(s => new DemoSessionInfo(s.Handle, s.CreatedAt, s.LastAccessedAt, s.UserAgent, s.IsCurrent))];
    }

    private static SortedDictionary<string, string> ReadAttributes(IClusterSession session)
    {
        var attributes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in session.Keys)
        {
            if (key.StartsWith(AttributePrefix, StringComparison.Ordinal) && session.TryGetValue(key, out var value))
            {
                attributes[key[AttributePrefix.Length..]] = Encoding.UTF8.GetString(value);
            }
        }

        return attributes;
    }

    private static List<string> ReadCart(IClusterSession session) => session.Get<List<string>>(CartKey) ?? [];

    private static IResult NotLoggedIn()
        => Results.Json(new { error = "Not logged in: POST /api/login first." }, statusCode: StatusCodes.Status401Unauthorized);

    /// <summary>The request body, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    internal sealed record LoginRequest(string? User, string? Password);

    internal sealed record CartItemRequest(string? Item);
}
