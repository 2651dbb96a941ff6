using System.Security.Claims;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>A real Kestrel app on a free 127.0.0.1 port, using ClusterSession or (for comparison) the built-in session.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestApp(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts an app whose session is ClusterSession over <paramref name="store"/>.</summary>
    /// <param name="store">The store.</param>
    /// <param name="keys">The shared data-protection key folder.</param>
    /// <param name="configure">Changes the options.</param>
    /// <param name="logs">Receives every log entry.</param>
    /// <param name="map">Maps endpoints of this app only (e.g. a type that another app's deploy changed).</param>
    public static Task<TestApp> StartAsync(ISessionStore store, DirectoryInfo keys, Action<ClusterSessionOptions>? configure = null, ILoggerProvider? logs = null, Action<WebApplication>? map = null)
        => StartCoreAsync(
            keys,
            services => services.AddClusterSession(options =>
            {
                options.UseStore(_ => store);
                configure?.Invoke(options);
            }),
            app =>
            {
                app.UseClusterSession();
                map?.Invoke(app);
            },
            logs);

    /// <summary>
    /// Starts an app with the two registration lines given and the same endpoints: used to show that moving
    /// from AddSession()/UseSession() to ClusterSession changes nothing else.
    /// </summary>
    public static async Task<TestApp> StartCoreAsync(DirectoryInfo keys, Action<IServiceCollection> addSession, Action<WebApplication> useSession, ILoggerProvider? logs = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Trace);
        }

        if (Environment.GetEnvironmentVariable("CS_TEST_LOG") is not null) { builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning); }
        builder.Services.AddDataProtection().SetApplicationName("ClusterSession.Tests").PersistKeysToFileSystem(keys);
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(options =>
        {
            options.Events.OnRedirectToLogin = context =>
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return Task.CompletedTask;
            };
        });
        builder.Services.AddSingleton<RequestGate>();
        addSession(builder.Services);

        var app = builder.Build();
        useSession(app);
        app.UseAuthentication();
        MapSessionEndpoints(app);
        MapClusterEndpoints(app);
        await app.StartAsync();

        // Make sure the shared data-protection key exists before another instance reads the key ring.
        app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("warm-up").Protect("x"u8.ToArray());
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new TestApp(app, new Uri(address));
    }

    /// <summary>Endpoints written against ISession only, as an app using AddSession() has them.</summary>
    private static void MapSessionEndpoints(WebApplication app)
    {
        app.MapGet("/noop", () => "noop");
        app.MapGet("/s/get/{key}", (HttpContext context, string key) => context.Session.GetString(key) ?? "(none)");
        app.MapPost("/s/set/{key}/{value}", (HttpContext context, string key, string value) =>
        {
            context.Session.SetString(key, value);
            return "ok";
        });
        app.MapPost("/s/set-async/{key}/{value}", async (HttpContext context, string key, string value) =>
        {
            // The pattern ASP.NET Core recommends for its own session: load asynchronously, then use it synchronously.
            await context.Session.LoadAsync();
            context.Session.SetString(key, value);
            return "ok";
        });
        app.MapPost("/s/int/{key}", (HttpContext context, string key) =>
        {
            var next = (context.Session.GetInt32(key) ?? 0) + 1;
            context.Session.SetInt32(key, next);
            return next.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        app.MapPost("/s/remove/{key}", (HttpContext context, string key) =>
        {
            context.Session.Remove(key);
            return "ok";
        });
        app.MapPost("/s/clear", (HttpContext context) =>
        {
            context.Session.Clear();
            return "ok";
        });
        app.MapGet("/s/keys", (HttpContext context) => string.Join(",", context.Session.Keys.Order(StringComparer.Ordinal)));
        app.MapGet("/s/load", async (HttpContext context) =>
        {
            await context.Session.LoadAsync();
            return context.Session.IsAvailable ? "available" : "unavailable";
        });
        app.MapPost("/s/commit/{key}/{value}", async (HttpContext context, string key, string value) =>
        {
            context.Session.SetString(key, value);
            await context.Session.CommitAsync();
            return "committed";
        });
        app.MapGet("/s/id-stable", (HttpContext context) => context.Session.Id == context.Session.Id && context.Session.Id.Length > 0 ? "stable" : "unstable");
        app.MapPost("/s/set-write-body/{key}/{value}", async (HttpContext context, string key, string value) =>
        {
            context.Session.SetString(key, value);
            await context.Response.WriteAsync("app body");
        });
        app.MapPost("/s/set-write-stream/{key}/{value}", async (HttpContext context, string key, string value) =>
        {
            context.Session.SetString(key, value);
            await context.Response.Body.WriteAsync("app body"u8.ToArray());
        });
        app.MapPost("/s/blind-mix", (HttpContext context) =>
        {
            // Writes before any read, then reads: the load must overlay the writes made so far.
            context.Session.SetString("a", "9");
            context.Session.Remove("b");
            context.Session.SetString("c", "3");
            context.Session.Remove("never-there");
            var keys = string.Join(",", context.Session.Keys.Order(StringComparer.Ordinal));
            return keys + "|" + context.Session.GetString("a") + "|" + (context.Session.GetString("b") ?? "(none)");
        });
        app.MapPost("/c/blind-set/{key}/{value}", (HttpContext context, string key, string value) =>
        {
            context.GetClusterSession().Set(key, System.Text.Encoding.UTF8.GetBytes(value));
            return "ok";
        });
        app.MapPost("/s/bytes/{key}", (HttpContext context, string key) =>
        {
            var buffer = new byte[] { 1, 2, 3 };
            context.Session.Set(key, buffer);
            buffer[0] = 9;
            return context.Session.TryGetValue(key, out var stored) ? string.Join("", stored) : "(none)";
        });
        app.MapGet("/s/load-cancelled", async (HttpContext context, bool? loadFirst) =>
        {
            if (loadFirst == true)
            {
                await context.Session.LoadAsync();
            }

            var outcomes = new List<string>();
            try
            {
                await context.Session.LoadAsync(new CancellationToken(canceled: true));
                outcomes.Add("loaded");
            }
            catch (OperationCanceledException)
            {
                outcomes.Add("cancelled");
            }

            try
            {
                await context.GetClusterSessionAsync(new CancellationToken(canceled: true));
                outcomes.Add("loaded");
            }
            catch (OperationCanceledException)
            {
                outcomes.Add("cancelled");
            }

            return string.Join(",", outcomes);
        });
        app.MapPost("/s/set-then-throw/{key}/{value}", (HttpContext context, string key, string value) =>
        {
            context.Session.SetString(key, value);
            throw new InvalidOperationException("Test: the endpoint failed after changing the session.");
        });
        app.MapGet("/s/get-caught/{key}", (HttpContext context, string key) =>
        {
            // An application that handles a store failure itself and answers anyway.
            try
            {
                return context.Session.GetString(key) ?? "(none)";
            }
            catch (SessionStoreUnavailableException)
            {
                return "caught";
            }
        });
        app.MapPost("/s/set-until-aborted/{key}/{value}", async (HttpContext context, RequestGate gate, string key, string value, bool? rethrow) =>
        {
            // Changes the session, then waits for the client to go away, as a slow endpoint on a mobile network does.
            context.Session.SetString(key, value);
            var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (context.RequestAborted.Register(() => aborted.TrySetResult()))
            {
                gate.Entered.TrySetResult();
                await aborted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }

            gate.Release.TrySetResult();
            if (rethrow == true)
            {
                context.RequestAborted.ThrowIfCancellationRequested();
            }

            return "too late";
        });
        app.MapPost("/s/sized/{key}/{size:int}", (HttpContext context, string key, int size) =>
        {
            context.Session.Set(key, new byte[size]);
            return "ok";
        });
    }

    /// <summary>Endpoints that use ClusterSession's own API and authentication.</summary>
    private static void MapClusterEndpoints(WebApplication app)
    {
        app.MapPost("/c/incr/{key}", async (HttpContext context, string key) =>
        {
            var session = await context.GetClusterSessionAsync();
            var value = await session.UpdateAsync<int>(key, n => n + 1);
            return value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        app.MapPost("/c/set/{key}/{value}", async (HttpContext context, string key, string value) =>
        {
            var session = await context.GetClusterSessionAsync();
            session.Set(key, new Item(value, value.Length));
            return "ok";
        });
        app.MapGet("/c/get/{key}", async (HttpContext context, string key) =>
        {
            var session = await context.GetClusterSessionAsync();
            return session.Get<Item>(key)?.Name ?? "(none)";
        });
        app.MapPost("/c/renew", async (HttpContext context) =>
        {
            var session = await context.GetClusterSessionAsync();
            await session.RenewIdAsync();
            return "renewed";
        });
        app.MapPost("/c/invalidate", async (HttpContext context) =>
        {
            var session = await context.GetClusterSessionAsync();
            await session.InvalidateAsync();
            return "invalidated";
        });
        app.MapGet("/c/info", async (HttpContext context) =>
        {
            var session = await context.GetClusterSessionAsync();
            return $"{session.Principal ?? "(anonymous)"}|{(session.IsNew ? "new" : "stored")}";
        });
        app.MapPost("/c/gated-set/{key}/{value}", async (HttpContext context, RequestGate gate, string key, string value) =>
        {
            var session = await context.GetClusterSessionAsync();
            gate.Entered.TrySetResult();
            await gate.Release.Task;
            session.Set(key, new Item(value, value.Length));
            return "ok";
        });
        app.MapPost("/c/bind/{user}", async (HttpContext context, string user) =>
        {
            var session = await context.GetClusterSessionAsync();
            await session.RenewIdAsync();
            session.Principal = user;
            return "bound";
        });
        app.MapPost("/login/{user}", async (HttpContext context, string user) =>
        {
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], CookieAuthenticationDefaults.AuthenticationScheme);
            await context.SignInAsync(new ClaimsPrincipal(identity));
            return "signed in";
        });
        app.MapGet("/me", (HttpContext context) =>
            context.User.Identity?.IsAuthenticated == true ? Results.Text(context.User.Identity.Name) : Results.StatusCode(401));
        app.MapPost("/logout", async (HttpContext context) =>
        {
            await context.SignOutAsync();
            return "signed out";
        });
        app.MapGet("/c/sessions", async (HttpContext context, [Microsoft.AspNetCore.Mvc.FromServices] ISessionManager manager) =>
            context.User.Identity?.Name is { } name ? Results.Json(await manager.ListAsync(name, context)) : Results.StatusCode(401));
        app.MapPost("/c/revoke/{handle}", async (HttpContext context, [Microsoft.AspNetCore.Mvc.FromServices] ISessionManager manager, string handle) =>
            context.User.Identity?.Name is { } name ? Results.Text((await manager.RevokeAsync(name, handle)).ToString()) : Results.StatusCode(401));
        app.MapPost("/c/revoke-others", async (HttpContext context, [Microsoft.AspNetCore.Mvc.FromServices] ISessionManager manager) =>
            context.User.Identity?.IsAuthenticated == true
                ? Results.Text((await manager.RevokeOthersAsync(context)).ToString(System.Globalization.CultureInfo.InvariantCulture))
                : Results.StatusCode(401));
        app.MapPost("/c/revoke-all", async (HttpContext context, [Microsoft.AspNetCore.Mvc.FromServices] ISessionManager manager) =>
        {
            if (context.User.Identity?.Name is not { } name)
            {
                return Results.StatusCode(401);
            }

            var count = await manager.RevokeAllAsync(name);
            await context.SignOutAsync();
            return Results.Text(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Holds a request in the middle (session loaded, nothing saved) until the test releases it.</summary>
internal sealed class RequestGate
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal sealed record Item(string Name, int Length);

/// <summary>Several app instances sharing one store and one data-protection key ring: a cluster behind a load balancer.</summary>
internal sealed class AppCluster : IAsyncDisposable
{
    private readonly DirectoryInfo _keys;

    private AppCluster(DirectoryInfo keys, IReadOnlyList<TestApp> apps, ObservedStore store)
    {
        _keys = keys;
        Apps = apps;
        Store = store;
    }

    public IReadOnlyList<TestApp> Apps { get; }

    public ObservedStore Store { get; }

    public Uri this[int index] => Apps[index].Address;

    /// <param name="store">The store the instances share.</param>
    /// <param name="instances">How many instances.</param>
    /// <param name="configure">Changes every instance's options.</param>
    /// <param name="logs">Receives every instance's log entries.</param>
    /// <param name="map">Maps endpoints of instance i only: different deploys of one application.</param>
    public static async Task<AppCluster> StartAsync(ISessionStore store, int instances = 2, Action<ClusterSessionOptions>? configure = null, ILoggerProvider? logs = null, Action<int, WebApplication>? map = null)
    {
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        var observed = new ObservedStore(store);
        var apps = new List<TestApp>();
        for (var i = 0; i < instances; i++)
        {
            var instance = i;
            apps.Add(await TestApp.StartAsync(observed, keys, configure, logs, map is null ? null : app => map(instance, app)));
        }

        return new AppCluster(keys, apps, observed);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in Apps)
        {
            await app.DisposeAsync();
        }

        if (Store.Inner is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        _keys.Delete(recursive: true);
    }
}
