using System.Globalization;
using System.Security.Claims;
using System.Text;
using ClusterSession;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ClusterDemo;

/// <summary>One app node: a Kestrel application on 127.0.0.1:P+k serving the whole HTTP contract.</summary>
internal static class DemoNode
{
    /// <summary>User-set attributes live under this prefix, apart from the cart and anything the library keeps.</summary>
    private const string AttributePrefix = "attr:";
    private const string CartKey = "cart";
    private const int MaxAttributeBytes = 16 * 1024;

    /// <summary>The cookie-authentication cookie; it holds only a protected key of the ticket kept in the session.</summary>
    private const string AuthCookieName = ".ClusterDemo.Auth";

    /// <summary>
    /// Under <c>--https</c>: names browsers store only with Secure, Path=/ and no Domain, so that no sub-domain and no
    /// plain-http page can set or shadow them (docs/security.md, "Cookies").
    /// </summary>
    private const string HttpsSessionCookieName = "__Host-ClusterSession";

    private const string HttpsAuthCookieName = "__Host-ClusterDemo.Auth";

    private const string NotLoggedInMessage = "Not logged in: POST /api/login first.";

    /// <summary>Builds node <paramref name="k"/> (1-based) on <paramref name="store"/>.</summary>
    /// <param name="arguments">The demo's command line.</param>
    /// <param name="k">The node's number; it listens on <see cref="DemoArguments.NodeUrl"/>.</param>
    /// <param name="store">The store every node connects to.</param>
    /// <param name="keyRing">A Data Protection key ring shared by the nodes in this process, or null to let ClusterSession keep it in the store.</param>
    /// <returns>The node, not started yet.</returns>
    public static WebApplication Build(DemoArguments arguments, int k, DemoSessionStore store, InProcessKeyRing? keyRing)
    {
        var node = "node-" + k.ToString(CultureInfo.InvariantCulture);
        var builder = DemoHost.CreateBuilder(arguments.NodeUrl(k));
        builder.Services.AddClusterSession(options =>
        {
            options.IdleTimeout = TimeSpan.FromSeconds(arguments.IdleTimeoutSeconds);
            options.MaxSessionsPerPrincipal = arguments.MaxSessionsPerUser;
            store.Configure(options);
            if (arguments.Https)
            {
                // Path=/ and no Domain are ClusterSession's defaults; a __Host- name with anything else fails at start-up.
                options.Cookie.Name = HttpsSessionCookieName;
                options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            }
        });
        AddCookieAuthentication(builder.Services, keyRing, arguments.Https);

        // GET /healthz asks the store: 200 while it answers, 503 while it is down (or the store's circuit is open).
        // GET /healthz/live: 200 while the node runs, whatever the store does (restarting the node would not help).
        // GET /healthz/ready: 200 only while the store takes writes as configured (with --wait-replicas, replicas in sync).
        builder.Services.AddHealthChecks().AddClusterSession().AddClusterSessionLiveness().AddClusterSessionReadiness();

        var app = builder.Build();
        app.Use((context, next) =>
        {
            // First in the pipeline, so that every response, errors included, names its node. A store outage, a
            // limit or a conflict needs no handling here: UseClusterSession answers it (503 with Retry-After, ...).
            context.Response.Headers["X-Served-By"] = node;
            return next(context);
        });
        // The session first: authentication reads its ticket from the request's session.
        app.UseClusterSession();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = static check => check.Name == ClusterSessionHealthChecksBuilderExtensions.DefaultName });
        app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = static check => check.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.LiveTag) });
        app.MapHealthChecks("/healthz/ready", new HealthCheckOptions { Predicate = static check => check.Tags.Contains(ClusterSessionHealthChecksBuilderExtensions.ReadyTag) });
        app.MapGet("/", (HttpContext context, ISessionManager manager) => PageAsync(context, manager, node, arguments));
        app.MapPost("/api/login", (HttpContext context, [FromBody] LoginRequest request) => LoginAsync(context, request, node));
        app.MapGet("/api/me", (HttpContext context, CancellationToken _) => MeAsync(context, node)).RequireAuthorization();
        app.MapPut("/api/attributes/{name}", SetAttributeAsync);
        app.MapGet("/api/attributes", async (HttpContext context, CancellationToken cancellationToken)
            => Results.Json(ReadAttributes(await context.GetClusterSessionAsync(cancellationToken))));
        app.MapPost("/api/cart/items", AddToCartAsync);
        app.MapGet("/api/cart", async (HttpContext context, CancellationToken cancellationToken)
            => Results.Json(ReadCart(await context.GetClusterSessionAsync(cancellationToken))));
        app.MapPost("/api/logout", (HttpContext context, CancellationToken _) => LogoutAsync(context));
        app.MapGet("/api/sessions", ListSessionsAsync).RequireAuthorization();
        app.MapDelete("/api/sessions/{handle}", RevokeSessionAsync).RequireAuthorization();
        app.MapPost("/api/sessions/revoke-others", RevokeOtherSessionsAsync).RequireAuthorization();
        return app;
    }

    /// <summary>
    /// ASP.NET Core cookie authentication, as an application would set it up. <c>AddClusterSession</c> does the
    /// rest: the ticket is kept in the session (the cookie carries only its key), a sign-in renews the session
    /// id and binds the session to the user, and a sign-out deletes the session in the store.
    /// </summary>
    private static void AddCookieAuthentication(IServiceCollection services, InProcessKeyRing? keyRing, bool https)
    {
        services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(options =>
        {
            options.Cookie.Name = https ? HttpsAuthCookieName : AuthCookieName;
            options.Cookie.HttpOnly = true;
            options.Cookie.SameSite = SameSiteMode.Lax;
            options.Cookie.Path = "/";

            // Behind the https load balancer a node sees http requests, so SameAsRequest would never say Secure.
            options.Cookie.SecurePolicy = https ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;

            // The session's idle timeout ends a login; a sliding ticket would only add a store write to read requests.
            options.SlidingExpiration = false;

            // An API answers 401 or 403 with a JSON body, never a redirect to a login page.
            options.Events.OnRedirectToLogin = context => WriteErrorAsync(context.Response, StatusCodes.Status401Unauthorized, NotLoggedInMessage);
            options.Events.OnRedirectToAccessDenied = context => WriteErrorAsync(context.Response, StatusCodes.Status403Forbidden, "Not allowed.");
        });
        services.AddOptions<CookieAuthenticationOptions>(CookieAuthenticationDefaults.AuthenticationScheme)
            .Configure<IOptions<ClusterSessionOptions>>((cookie, session) => cookie.ExpireTimeSpan = session.Value.AbsoluteLifetime);
        services.AddAuthorization();

        // The cookie is protected with Data Protection. The demo configures no key persistence, so ClusterSession
        // keeps the key ring in the shared store: every node, and every restart of the demo, reads every other
        // node's cookies. Only the in-memory store, which keeps no key ring, gets one shared in this process
        // (see docs/clusterdemo.md).
        InProcessKeyRing.Use(services, keyRing);
    }

    private static Task WriteErrorAsync(HttpResponse response, int status, string message)
    {
        response.StatusCode = status;
        return response.WriteAsJsonAsync(new { error = message });
    }

    private static async Task<IResult> PageAsync(HttpContext context, ISessionManager manager, string node, DemoArguments arguments)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        var user = SignedInUser(context);
        IReadOnlyList<DemoSessionInfo> sessions = user is null ? [] : await ListAsync(context, manager, user);
        var model = new DemoPageModel(
            node,
            user,
            session.IsNew ? null : session.CreatedAt,
            session.IsNew ? null : session.LastAccessedAt,
            session.IsNew ? TimeSpan.FromSeconds(arguments.IdleTimeoutSeconds) : session.IdleTimeout,
            [.. ReadAttributes(session)],
            ReadCart(session),
            sessions,
            arguments.MaxSessionsPerUser,
            arguments.NearCache);
        context.Response.Headers.CacheControl = "no-store";
        return Results.Content(DemoPage.Render(model), "text/html; charset=utf-8");
    }

    private static async Task<IResult> LoginAsync(HttpContext context, LoginRequest request, string node)
    {
        if (!DemoUsers.Verify(request.User, request.Password))
        {
            return Results.Json(new { error = "Unknown user or wrong password (try alice, bob or carol with password demo)." }, statusCode: StatusCodes.Status401Unauthorized);
        }

        // ClusterSession's sign-in renews the session id (session fixation; the attributes set before login
        // come along), binds the session to the user (recording the User-Agent, which ISessionManager lists per
        // device) and keeps the ticket in the session.
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, request.User!)], CookieAuthenticationDefaults.AuthenticationScheme);
        await context.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
        return Results.Json(new { user = request.User, node });
    }

    private static async Task<IResult> MeAsync(HttpContext context, string node)
    {
        var session = await context.GetClusterSessionAsync(context.RequestAborted);
        return Results.Json(new
        {
            user = SignedInUser(context),
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
        // Removes the ticket and the cookie; ClusterSession then deletes the session in the store, for every node.
        await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        return Results.NoContent();
    }

    private static async Task<IResult> ListSessionsAsync(HttpContext context, ISessionManager manager)
    {
        var sessions = await ListAsync(context, manager, SignedInUser(context)!);
        return Results.Json(sessions.Select(s => new
        {
            handle = s.Handle,
            createdAt = s.CreatedAt,
            lastAccessedAt = s.LastAccessedAt,
            userAgent = s.UserAgent,
            device = s.Device,
            current = s.Current,
        }));
    }

    private static async Task<IResult> RevokeSessionAsync(HttpContext context, ISessionManager manager, string handle)
    {
        // Scoped to the signed-in user: a handle of someone else's session revokes nothing.
        return await manager.RevokeAsync(SignedInUser(context)!, handle, context.RequestAborted)
            ? Results.NoContent()
            : Results.Json(new { error = "No session of yours has that handle." }, statusCode: StatusCodes.Status404NotFound);
    }

    private static async Task<IResult> RevokeOtherSessionsAsync(HttpContext context, ISessionManager manager)
    {
        // "Sign out my other devices": every other session of this user ends on every node; this one stays.
        var revoked = await manager.RevokeOthersAsync(context, context.RequestAborted);
        return Results.Json(new { revoked });
    }

    private static async Task<IReadOnlyList<DemoSessionInfo>> ListAsync(HttpContext context, ISessionManager manager, string user)
    {
        var sessions = await manager.ListAsync(user, context, context.RequestAborted);
        return [.. sessions
            .OrderByDescending(s => s.IsCurrent)
            .ThenByDescending(s => s.LastAccessedAt)
            .Select(s => new DemoSessionInfo(s.Handle, s.CreatedAt, s.LastAccessedAt, s.UserAgent, s.Device, s.IsCurrent))];
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

    /// <summary>The user cookie authentication recognised on this request, or null.</summary>
    private static string? SignedInUser(HttpContext context)
        => context.User.Identity is { IsAuthenticated: true, Name: { } name } ? name : null;

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
