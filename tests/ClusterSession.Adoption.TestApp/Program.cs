// One app as a team runs it before and after adopting ClusterSession, over one real Redis.
// --Mode builtin: ASP.NET Core's own session (AddSession over AddStackExchangeRedisCache) and cookie authentication
// with the whole ticket in the cookie (AddCookie without a ticket store), Data Protection keys in --KeysDirectory.
// --Mode cluster: the same app on ClusterSession (same Redis, same keys directory), with both imports on; the
// distributed cache stays registered for the import.
// Other arguments (besides --urls and --contentRoot): --Redis <configuration>, --Prefix <key prefix of this run>.
using System.Security.Claims;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;

var builder = WebApplication.CreateBuilder(args);
var settings = builder.Configuration;
builder.Logging.SetMinimumLevel(LogLevel.Information);
var redis = settings["Redis"] ?? throw new InvalidOperationException("--Redis is required.");
var prefix = settings["Prefix"] ?? throw new InvalidOperationException("--Prefix is required.");
var keys = settings["KeysDirectory"] ?? throw new InvalidOperationException("--KeysDirectory is required.");
var cluster = settings["Mode"] switch
{
    "builtin" => false,
    "cluster" => true,
    _ => throw new InvalidOperationException("--Mode must be builtin or cluster."),
};

builder.Services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(keys)).SetApplicationName("adoption-test-app");
builder.Services.AddStackExchangeRedisCache(cache =>
{
    cache.Configuration = redis;
    cache.InstanceName = prefix + "builtin:";
});
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(cookie =>
{
    cookie.Cookie.Name = ".Adoption.Auth";
    cookie.Events.OnRedirectToLogin = context =>
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return Task.CompletedTask;
    };
});

if (cluster)
{
    builder.Services.AddClusterSession(options =>
    {
        options.UseRedis(store =>
        {
            store.Configuration = redis;
            store.KeyPrefix = prefix + "cs:";
        });
        options.ImportBuiltInSession.Enabled = true;
        options.ImportAuthenticationCookies = true;
    });
}
else
{
    builder.Services.AddSession();
}

var app = builder.Build();
if (cluster)
{
    app.UseClusterSession();
}
else
{
    app.UseSession();
}

app.UseAuthentication();

app.MapGet("/health", () => "ok");

// Signs in and stores values in HttpContext.Session: a text, bytes that are not text, and a counter.
app.MapPost("/signin/{user}", async (HttpContext context, string user) =>
{
    await context.Session.LoadAsync();
    context.Session.SetString("cart", "cart-of-" + user);
    context.Session.Set("bytes", [0, 1, 2, 254, 255, (byte)user.Length]);
    context.Session.SetInt32("visits", 1);
    var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user), new Claim("team", "team-of-" + user)], CookieAuthenticationDefaults.AuthenticationScheme);
    await context.SignInAsync(new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = true });
    return Results.Ok();
});

// Who is signed in, the claim that came with the ticket, and the session's values; 401 when not signed in.
app.MapGet("/me", async (HttpContext context) =>
{
    if (context.User.Identity?.IsAuthenticated != true)
    {
        return Results.Unauthorized();
    }

    await context.Session.LoadAsync();
    var visits = (context.Session.GetInt32("visits") ?? 0) + 1;
    context.Session.SetInt32("visits", visits);
    var bytes = context.Session.TryGetValue("bytes", out var b) ? Convert.ToHexString(b) : "-";
    return Results.Text($"{context.User.Identity.Name}|{context.User.FindFirst("team")?.Value}|{context.Session.GetString("cart") ?? "-"}|{bytes}|{visits}");
});

// The session's values without authentication (for a user with a session and no sign-in).
app.MapGet("/session", async (HttpContext context) =>
{
    await context.Session.LoadAsync();
    return Results.Text(string.Join(",", context.Session.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => k + "=" + (context.Session.GetString(k) ?? "?"))));
});

// Writes one value to the session without signing in (a guest's session).
app.MapPost("/session/{key}/{value}", async (HttpContext context, string key, string value) =>
{
    await context.Session.LoadAsync();
    context.Session.SetString(key, value);
    return Results.NoContent();
});

app.Run();
