using System.Net;
using System.Security.Claims;
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

namespace ClusterSession.Cli.Tests;

/// <summary>
/// A real Kestrel app on 127.0.0.1 with cookie sign-in and ClusterSession over the store under test: the sessions
/// the tool looks at are made the way an application makes them (sign-in binds the principal, the User-Agent is recorded).
/// </summary>
internal sealed class WebApp : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly DirectoryInfo _keys;

    private WebApp(WebApplication app, DirectoryInfo keys, Uri address)
    {
        _app = app;
        _keys = keys;
        Address = address;
    }

    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<WebApp> StartAsync(ISessionStore store)
    {
        var keys = Directory.CreateTempSubdirectory("cs-cli-keys-");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddDataProtection().SetApplicationName("ClusterSession.Cli.Tests").PersistKeysToFileSystem(keys);
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(options =>
            options.Events.OnRedirectToLogin = context =>
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return Task.CompletedTask;
            });
        builder.Services.AddClusterSession(options => options.UseStore(_ => store));
        var app = builder.Build();
        app.UseClusterSession();
        app.UseAuthentication();
        app.MapPost("/login/{user}", async (HttpContext context, string user) =>
        {
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], CookieAuthenticationDefaults.AuthenticationScheme);
            await context.SignInAsync(new ClaimsPrincipal(identity));
            return "signed in";
        });
        app.MapPost("/cart/{value}", (HttpContext context, string value) =>
        {
            context.Session.SetString("cart", value);
            return "ok";
        });
        app.MapGet("/me", (HttpContext context) =>
            context.User.Identity?.IsAuthenticated == true ? Results.Text(context.User.Identity.Name) : Results.StatusCode(401));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new WebApp(app, keys, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _keys.Delete(recursive: true);
    }
}

/// <summary>One browser: its own cookie jar and User-Agent.</summary>
internal sealed class Browser : IDisposable
{
    public const string Firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
    public const string SafariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    public const string ChromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";

    private readonly CookieContainer _cookies = new();
    private readonly HttpClient _client;

    public Browser(Uri address, string userAgent)
    {
        _client = new HttpClient(new HttpClientHandler { CookieContainer = _cookies, UseCookies = true, AllowAutoRedirect = false }) { BaseAddress = address };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd(userAgent);
    }

    /// <summary>Every cookie value the browser holds (the session id, the protected auth cookie).</summary>
    public IEnumerable<string> CookieValues => _cookies.GetAllCookies().Select(static c => c.Value);

    public async Task<HttpStatusCode> PostAsync(string path)
    {
        using var response = await _client.PostAsync(new Uri(path, UriKind.Relative), null);
        return response.StatusCode;
    }

    public async Task<HttpStatusCode> GetAsync(string path)
    {
        using var response = await _client.GetAsync(new Uri(path, UriKind.Relative));
        return response.StatusCode;
    }

    public void Dispose() => _client.Dispose();
}
