// One ordinary app as a user writes it: cookie authentication, antiforgery and ClusterSession over a shared
// store, with nothing about Data Protection unless --KeysDirectory asks the app to persist its keys itself.
// Arguments (besides --urls and --contentRoot): --Store redis|postgres, --Redis <configuration> or
// --Postgres <connection string>, --Prefix <key or table prefix>, optional --ShareKeys false, --KeysDirectory <dir>,
// --IdleTimeoutSeconds <n> (default 20 minutes), --NearCache true (the store's near cache on), --KeyCertificate <pfx file>
// with --KeyCertificatePassword <password> (Data Protection encrypts its keys at rest with that certificate:
// ProtectKeysWithCertificate), --Events every|one (an observer records session lifecycle events, delivered to every
// node or to one; GET /events lists them), --CleanupSeconds <n> (PostgreSQL's cleanup interval).
// The clock tests run it under faketime, as a node whose clock is off.
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;

var builder = WebApplication.CreateBuilder(args);
var settings = builder.Configuration;
builder.Logging.SetMinimumLevel(LogLevel.Warning);

builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(cookie =>
{
    // An API-style answer instead of a redirect to a login page, so the tests read the outcome from the status.
    cookie.Events.OnRedirectToLogin = context =>
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return Task.CompletedTask;
    };
});
builder.Services.AddAntiforgery();
if (settings["KeysDirectory"] is { Length: > 0 } keysDirectory)
{
    builder.Services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(keysDirectory));
}

if (settings["KeyCertificate"] is { Length: > 0 } certificateFile)
{
    var certificate = X509CertificateLoader.LoadPkcs12FromFile(certificateFile, settings["KeyCertificatePassword"]);
    builder.Services.AddDataProtection().ProtectKeysWithCertificate(certificate);
}

var lifecycle = new RecordingObserver();
if (settings["Events"] is { Length: > 0 } delivery)
{
    builder.Services.AddSingleton<ISessionLifecycleObserver>(lifecycle);
}

builder.Services.AddClusterSession(options =>
{
    options.Events.Delivery = settings["Events"] == "one" ? SessionEventDelivery.OneNode : SessionEventDelivery.EveryNode;
    options.ShareDataProtectionKeys = settings.GetValue("ShareKeys", defaultValue: true);
    if (settings["IdleTimeoutSeconds"] is { Length: > 0 } idle)
    {
        options.IdleTimeout = TimeSpan.FromSeconds(int.Parse(idle, System.Globalization.CultureInfo.InvariantCulture));
    }

    var nearCache = settings.GetValue("NearCache", defaultValue: false);
    var prefix = settings["Prefix"] ?? throw new InvalidOperationException("--Prefix is required.");
    switch (settings["Store"])
    {
        case "redis":
            options.UseRedis(redis =>
            {
                redis.Configuration = settings["Redis"];
                redis.KeyPrefix = prefix;
                redis.NearCache.Enabled = nearCache;
            });
            break;
        case "postgres":
            options.UsePostgres(postgres =>
            {
                postgres.ConnectionString = settings["Postgres"];
                postgres.TablePrefix = prefix;
                postgres.CreateSchemaOnStartup = true;
                postgres.NearCache.Enabled = nearCache;
                if (settings["CleanupSeconds"] is { Length: > 0 } cleanup)
                {
                    postgres.CleanupInterval = TimeSpan.FromSeconds(int.Parse(cleanup, System.Globalization.CultureInfo.InvariantCulture));
                }
            });
            break;
        default:
            throw new InvalidOperationException("--Store must be redis or postgres.");
    }
});

// The near cache's counters in this process (Meter "ClusterSession.NearCache"), for GET /near-cache.
var nearCacheCounters = new NearCacheCounters();

var app = builder.Build();
app.UseClusterSession();
app.UseAuthentication();

app.MapGet("/health", () => "ok");
app.MapGet("/near-cache", () => Results.Json(nearCacheCounters.Read()));
app.MapGet("/clock", () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
app.MapPost("/session/{key}/{value}", (HttpContext context, string key, string value) =>
{
    context.Session.SetString(key, value);
    return Results.Ok();
});
app.MapGet("/session/{key}", async (HttpContext context, string key) =>
{
    await context.Session.LoadAsync();
    return context.Session.GetString(key) is { } value ? Results.Text(value) : Results.NotFound();
});
app.MapPost("/signin/{user}", async (HttpContext context, string user) =>
{
    await context.SignInAsync(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], CookieAuthenticationDefaults.AuthenticationScheme)));
    return Results.Ok();
});
app.MapPost("/signout", async (HttpContext context) =>
{
    await context.SignOutAsync();
    return Results.Ok();
});
// Unauthenticated on purpose: a test app on loopback; a real app checks who may revoke whose sessions.
app.MapPost("/revoke-all/{user}", async (ISessionManager sessions, string user) => Results.Text((await sessions.RevokeAllAsync(user)).ToString(System.Globalization.CultureInfo.InvariantCulture)));
app.MapGet("/events", () => Results.Text(string.Join('\n', lifecycle.Lines)));
app.MapGet("/my-handle", async (HttpContext context, ISessionManager sessions) => context.User.Identity?.Name is { } name
    ? Results.Text((await sessions.ListAsync(name, context)).Single(s => s.IsCurrent).Handle)
    : Results.Unauthorized());
app.MapGet("/me", (HttpContext context) => context.User.Identity is { IsAuthenticated: true, Name: { } name }
    ? Results.Text(name)
    : Results.Unauthorized());
app.MapGet("/form", (HttpContext context, IAntiforgery antiforgery) =>
{
    var tokens = antiforgery.GetAndStoreTokens(context);
    return Results.Content(
        $"<form method=\"post\" action=\"/form\"><input type=\"hidden\" name=\"{tokens.FormFieldName}\" value=\"{tokens.RequestToken}\"></form>",
        "text/html");
});
app.MapPost("/form", async (HttpContext context, IAntiforgery antiforgery) =>
{
    try
    {
        await antiforgery.ValidateRequestAsync(context);
        return Results.Text("accepted");
    }
    catch (AntiforgeryValidationException)
    {
        return Results.BadRequest("antiforgery validation failed");
    }
});

await app.RunAsync();

/// <summary>Totals of the near cache's counters (hits, misses, invalidations, flushes) since the process started.</summary>
internal sealed class NearCacheCounters
{
    private readonly MeterListener _listener = new();
    private long _hits;
    private long _misses;
    private long _invalidations;
    private long _flushes;

    public NearCacheCounters()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "ClusterSession.NearCache")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, measurement, _, _) =>
        {
            switch (instrument.Name)
            {
                case "cluster_session.near_cache.hits":
                    Interlocked.Add(ref _hits, measurement);
                    break;
                case "cluster_session.near_cache.misses":
                    Interlocked.Add(ref _misses, measurement);
                    break;
                case "cluster_session.near_cache.invalidations":
                    Interlocked.Add(ref _invalidations, measurement);
                    break;
                case "cluster_session.near_cache.flushes":
                    Interlocked.Add(ref _flushes, measurement);
                    break;
            }
        });
        _listener.Start();
    }

    public Dictionary<string, long> Read() => new(StringComparer.Ordinal)
    {
        ["hits"] = Interlocked.Read(ref _hits),
        ["misses"] = Interlocked.Read(ref _misses),
        ["invalidations"] = Interlocked.Read(ref _invalidations),
        ["flushes"] = Interlocked.Read(ref _flushes),
    };
}

/// <summary>Records every session lifecycle event this node handles, one line each: "event id|kind|cause|handle".</summary>
internal sealed class RecordingObserver : ISessionLifecycleObserver
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IEnumerable<string> Lines => _lines;

    public ValueTask OnSessionEventAsync(ClusterSession.SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken)
    {
        _lines.Enqueue($"{sessionEvent.EventId}|{sessionEvent.Kind}|{sessionEvent.EndCause}|{sessionEvent.Handle}");
        return ValueTask.CompletedTask;
    }
}
