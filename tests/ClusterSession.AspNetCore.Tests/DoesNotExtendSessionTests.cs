using System.Net;
using ClusterSession.AspNetCore.Sessions;
using ClusterSession.InMemory;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// Endpoints with DoesNotExtendSession metadata (<c>.DoesNotExtendSession()</c>, <c>[DoesNotExtendSession]</c>) read the
/// session but never keep it alive: a client polling them outlives the idle timeout and its session ends on time.
/// Inherited once per store; the store's and the app's clock is the test's FakeTimeProvider.
/// </summary>
public abstract class DoesNotExtendSessionTests : IAsyncLifetime
{
    private const string CookieName = ".ClusterSession";
    private static readonly TimeSpan IdleTimeout = new ClusterSessionOptions().IdleTimeout;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly DirectoryInfo _keys = Directory.CreateTempSubdirectory("cs-keys-");
    private ISessionStore? _inner;
    private ObservedStore? _store;
    private TestApp? _app;
    private int _sent;
    private int _completed;

    private ObservedStore Store => _store!;

    private Uri Address => _app!.Address;

    /// <summary>Creates an empty store that no other test sees, dating everything with <paramref name="time"/>.</summary>
    protected abstract ISessionStore CreateStore(TimeProvider time);

    public async Task InitializeAsync()
    {
        _inner = CreateStore(_time);
        _store = new ObservedStore(_inner);
        _app = await TestApp.StartCoreAsync(
            _keys,
            services =>
            {
                services.AddSingleton<TimeProvider>(_time);
                services.AddControllers().AddApplicationPart(typeof(PollController).Assembly);
                services.AddClusterSession(options => options.UseStore(_ => Store));
            },
            app =>
            {
                // Registered first, so its OnCompleted runs last: after the session's own (which would start a touch).
                app.Use((context, next) =>
                {
                    context.Response.OnCompleted(() =>
                    {
                        Interlocked.Increment(ref _completed);
                        return Task.CompletedTask;
                    });
                    return next(context);
                });
                app.UseClusterSession();
                app.MapGet("/poll/{key}", (HttpContext context, string key) => context.Session.GetString(key) ?? "(none)").DoesNotExtendSession();
                app.MapGet("/poll-noop", () => "noop").DoesNotExtendSession();
                app.MapGet("/poll-attribute/{key}", [DoesNotExtendSession] (HttpContext context, string key) => context.Session.GetString(key) ?? "(none)");
                app.MapPost("/poll-write/{key}/{value}", (HttpContext context, string key, string value) =>
                {
                    try
                    {
                        context.Session.SetString(key, value);
                        return "written";
                    }
                    catch (InvalidOperationException ex)
                    {
                        return ex.Message;
                    }
                }).DoesNotExtendSession();
                var group = app.MapGroup("/group").DoesNotExtendSession();
                group.MapGet("/{key}", (HttpContext context, string key) => context.Session.GetString(key) ?? "(none)");
                app.MapControllers();
            });
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        switch (_inner)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }

        _keys.Delete(recursive: true);
    }

    [Fact]
    public async Task A_session_polled_every_third_of_its_idle_timeout_through_DoesNotExtendSession_expires_on_time()
    {
        var browser = new Browser();
        await SendAsync(browser, HttpMethod.Post, "/s/set/a/1");
        var id = browser.Cookies[CookieName];
        Store.ResetCounts();

        for (var i = 0; i < 2; i++)
        {
            _time.Advance(IdleTimeout / 3);
            var poll = await SendAsync(browser, HttpMethod.Get, "/poll/a");
            Assert.Equal("1", poll.Body);
            Assert.Null(poll.SetCookie(CookieName));
        }

        // The last ordinary request was one idle timeout ago (and a second): the polls kept nothing alive.
        _time.Advance((IdleTimeout / 3) + TimeSpan.FromSeconds(1));
        Assert.Equal("(none)", (await SendAsync(browser, HttpMethod.Get, "/poll/a")).Body);

        Assert.Equal(0, Store.Calls("load"));
        Assert.Equal(3, Store.Calls("load_no_touch"));
        Assert.Equal(0, Store.Writes);
        Assert.Null(await Store.Inner.LoadAsync(id));
        Assert.Equal("(none)", (await SendAsync(browser, HttpMethod.Get, "/s/get/a")).Body);
    }

    [Fact]
    public async Task The_same_polling_through_an_ordinary_endpoint_keeps_the_session_alive()
    {
        var browser = new Browser();
        await SendAsync(browser, HttpMethod.Post, "/s/set/a/1");

        // Three idle timeouts of polling.
        for (var i = 0; i < 9; i++)
        {
            _time.Advance(IdleTimeout / 3);
            Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/s/get/a")).Body);
        }

        Assert.Equal(0, Store.Calls("load_no_touch"));
    }

    [Fact]
    public async Task Polling_that_never_reads_the_session_does_not_touch_it_either()
    {
        var browser = new Browser();
        await SendAsync(browser, HttpMethod.Post, "/s/set/a/1");
        Store.ResetCounts();

        for (var i = 0; i < 3; i++)
        {
            _time.Advance(IdleTimeout / 3);
            Assert.Equal("noop", (await SendAsync(browser, HttpMethod.Get, "/poll-noop")).Body);
            await UntilSettledAsync();
        }

        Assert.Equal(0, Store.TotalCalls);
        Assert.Equal("(none)", (await SendAsync(browser, HttpMethod.Get, "/s/get/a")).Body);
    }

    [Fact]
    public async Task Attribute_on_a_handler_or_a_controller_and_the_convention_on_a_route_group_read_without_touching()
    {
        var browser = new Browser();
        await SendAsync(browser, HttpMethod.Post, "/s/set/a/1");
        Store.ResetCounts();

        Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/poll-attribute/a")).Body);
        Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/group/a")).Body);
        Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/mvc/poll/a")).Body);
        Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/mvc/class/a")).Body);

        Assert.Equal(0, Store.Calls("load"));
        Assert.Equal(4, Store.Calls("load_no_touch"));
        Assert.Equal(0, Store.Writes);
    }

    [Fact]
    public async Task A_write_under_DoesNotExtendSession_throws_naming_the_metadata_and_creates_nothing()
    {
        var stranger = new Browser();
        var refused = await SendAsync(stranger, HttpMethod.Post, "/poll-write/a/1");
        Assert.Contains("DoesNotExtendSession", refused.Body, StringComparison.Ordinal);
        Assert.Null(refused.SetCookie(CookieName));

        var browser = new Browser();
        await SendAsync(browser, HttpMethod.Post, "/s/set/a/1");
        Store.ResetCounts();
        Assert.Contains("DoesNotExtendSession", (await SendAsync(browser, HttpMethod.Post, "/poll-write/a/2")).Body, StringComparison.Ordinal);

        Assert.Equal(0, Store.Writes);
        Assert.Equal(1, await Store.Inner.CountAsync());
        Assert.Equal("1", (await SendAsync(browser, HttpMethod.Get, "/poll/a")).Body);
    }

    private async Task<Response> SendAsync(Browser browser, HttpMethod method, string path)
    {
        Interlocked.Increment(ref _sent);
        var response = await browser.SendAsync(method, Address, path);
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return response;
    }

    /// <summary>Waits until every request sent has completed on the server and no touch is in flight.</summary>
    private async Task UntilSettledAsync()
    {
        var toucher = _app!.Services.GetRequiredService<SessionToucher>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref _completed) < Volatile.Read(ref _sent) || toucher.InFlight > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "Requests or touches did not finish within 10 s.");
            await Task.Delay(10);
        }
    }
}

/// <summary>A controller with the attribute on its action.</summary>
[ApiController]
public sealed class PollController : ControllerBase
{
    [HttpGet("/mvc/poll/{key}")]
    [DoesNotExtendSession]
    public string Poll(string key) => HttpContext.Session.GetString(key) ?? "(none)";
}

/// <summary>A controller with the attribute on the class: every action inherits it.</summary>
[ApiController]
[DoesNotExtendSession]
public sealed class ClassPollController : ControllerBase
{
    [HttpGet("/mvc/class/{key}")]
    public string Poll(string key) => HttpContext.Session.GetString(key) ?? "(none)";
}

public sealed class InMemoryDoesNotExtendSessionTests : DoesNotExtendSessionTests
{
    protected override ISessionStore CreateStore(TimeProvider time) => new InMemorySessionStore(timeProvider: time);
}

[Collection(AspNetCoreRedis.Name)]
public sealed class RedisDoesNotExtendSessionTests(RedisServerFixture redis) : DoesNotExtendSessionTests
{
    protected override ISessionStore CreateStore(TimeProvider time)
        => new RedisSessionStore(
            new RedisSessionStoreOptions { Configuration = redis.Configuration, KeyPrefix = "noext" + Guid.NewGuid().ToString("N")[..12] + ":" },
            time);
}
