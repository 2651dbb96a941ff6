using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// A deploy that changes an attribute's type: instance 0 runs the old deploy (the basket is <see cref="V1.Basket"/>,
/// a list of names), instance 1 the new one (<see cref="V2.Basket"/>, a count), both on one store. Inherited once
/// per store (in-memory, Redis), so that the data really went through the store.
/// </summary>
public abstract class UnreadableAttributeTests
{
    private const string CookieName = ".ClusterSession";
    private const string Key = "shopping";
    private const string Value = "fountain-pen";

    /// <summary>Creates an empty store that no other test sees.</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync();

    [Fact]
    public async Task By_default_an_attribute_of_a_changed_type_reads_as_absent_with_one_warning_and_a_metric()
    {
        var logs = new ListLoggerProvider();
        using var metric = new UnreadableCounter();
        await using var cluster = await StartAsync(logs, configure: null);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/login/frank");
        Assert.Equal("ok", (await browser.PostAsync(cluster[0], "/basket/" + Value)).Body);

        var read = await browser.GetAsync(cluster[1], "/basket");

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("(none)", read.Body);
        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == 20);
        Assert.Equal(LogLevel.Warning, warning.Level);
        // ASP.NET Core's own request logs quote the test's URLs; ClusterSession's entries name neither key, value nor id.
        var ours = logs.Entries.Where(e => e.Category.StartsWith("ClusterSession", StringComparison.Ordinal)).ToList();
        Assert.Contains(warning, ours);
        Assert.DoesNotContain(ours, e => e.Text.Contains(Key, StringComparison.OrdinalIgnoreCase) || e.Text.Contains(Value, StringComparison.Ordinal));
        Assert.DoesNotContain(ours, e => e.Text.Contains(browser.Cookies[CookieName], StringComparison.Ordinal));
        Assert.True(metric.Count("treat_as_absent") >= 1);

        // The session and its sign-in go on; the new deploy overwrites the value in its own shape.
        Assert.Equal("frank", (await browser.GetAsync(cluster[1], "/me")).Body);
        Assert.Equal(Value, (await browser.GetAsync(cluster[0], "/basket")).Body);
        Assert.Equal("ok", (await browser.PostAsync(cluster[1], "/basket/3")).Body);
        Assert.Equal("3", (await browser.GetAsync(cluster[1], "/basket")).Body);
    }

    [Fact]
    public async Task Typed_update_of_an_attribute_of_a_changed_type_starts_from_absent()
    {
        await using var cluster = await StartAsync(new ListLoggerProvider(), configure: null);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/basket/" + Value);

        var updated = await browser.PostAsync(cluster[1], "/basket/increment");

        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal("1", updated.Body);
        Assert.Equal("1", (await browser.GetAsync(cluster[1], "/basket")).Body);
    }

    [Fact]
    public async Task End_session_policy_reads_as_absent_and_ends_the_session_on_every_instance()
    {
        var logs = new ListLoggerProvider();
        using var metric = new UnreadableCounter();
        await using var cluster = await StartAsync(logs, o => o.UnreadableAttributes = UnreadableAttributePolicy.EndSession);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/login/grace");
        await browser.PostAsync(cluster[0], "/basket/" + Value);
        var id = browser.Cookies[CookieName];

        var read = await browser.GetAsync(cluster[1], "/basket");

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("(none)", read.Body);
        Assert.Contains(read.SetCookies, c => c.StartsWith(CookieName + "=;", StringComparison.Ordinal));
        Assert.Null(await cluster.Store.Inner.LoadAsync(id));
        Assert.Single(logs.Entries, e => e.EventId.Id == 20);
        Assert.True(metric.Count("end_session") >= 1);

        // Even a stolen copy of the old cookies is worth nothing now, on the old deploy too.
        var copy = new Browser();
        copy.Cookies[CookieName] = id;
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(cluster[0], "/me")).Status);
        Assert.Equal("(none)", (await copy.GetAsync(cluster[0], "/basket")).Body);
    }

    [Fact]
    public async Task Throw_policy_throws_a_specific_exception_the_application_can_handle()
    {
        var logs = new ListLoggerProvider();
        using var metric = new UnreadableCounter();
        await using var cluster = await StartAsync(logs, o => o.UnreadableAttributes = UnreadableAttributePolicy.Throw);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/basket/" + Value);

        var handled = await browser.GetAsync(cluster[1], "/basket/caught");
        var unhandled = await browser.GetAsync(cluster[1], "/basket");

        Assert.Equal("SessionAttributeUnreadableException: Basket", handled.Body);
        Assert.Equal(HttpStatusCode.InternalServerError, unhandled.Status);
        Assert.Equal(2, logs.Entries.Count(e => e.EventId.Id == 20));
        Assert.True(metric.Count("throw") >= 2);
        Assert.Equal(Value, (await browser.GetAsync(cluster[0], "/basket")).Body);
    }

    [Fact]
    public async Task Authentication_ticket_that_no_longer_deserializes_reads_as_signed_out_not_a_500()
    {
        var logs = new ListLoggerProvider();
        await using var cluster = await StartAsync(logs, configure: null);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/login/heidi");
        await browser.PostAsync(cluster[0], "/s/set/a/1");
        var id = browser.Cookies[CookieName];

        // A ticket the running code cannot read (as after a change of the ticket format): the stored one, cut short.
        var stored = await cluster.Store.Inner.LoadAsync(id);
        var ticket = stored!.Attributes["__cs.ticket"];
        var changes = new SessionChanges(id, new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["__cs.ticket"] = ticket[..(ticket.Length / 2)] });
        Assert.Equal(SessionSaveResult.Saved, await cluster.Store.Inner.SaveAsync(changes));

        var me = await browser.GetAsync(cluster[1], "/me");

        Assert.Equal(HttpStatusCode.Unauthorized, me.Status);
        Assert.Single(logs.Entries, e => e.EventId.Id == 20);
        Assert.Equal("1", (await browser.GetAsync(cluster[1], "/s/get/a")).Body);
    }

    [Fact]
    public async Task A_policy_that_is_not_defined_fails_at_startup_naming_the_option()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(new ListLoggerProvider(), o => o.UnreadableAttributes = (UnreadableAttributePolicy)7));
        Assert.Contains("ClusterSessionOptions.UnreadableAttributes", error.Message, StringComparison.Ordinal);
    }

    private async Task<AppCluster> StartAsync(ListLoggerProvider logs, Action<ClusterSessionOptions>? configure)
        => await AppCluster.StartAsync(await CreateStoreAsync(), instances: 2, configure, logs, MapBasket);

    /// <summary>The same routes and key in both deploys; only the type differs.</summary>
    private static void MapBasket(int instance, WebApplication app)
    {
        if (instance == 0)
        {
            app.MapPost("/basket/{item}", async (HttpContext context, string item) =>
            {
                var session = await context.GetClusterSessionAsync();
                session.Set(Key, new V1.Basket([item]));
                return "ok";
            });
            app.MapGet("/basket", async (HttpContext context) =>
                (await context.GetClusterSessionAsync()).Get<V1.Basket>(Key) is { } basket ? string.Join(",", basket.Items) : "(none)");
            return;
        }

        app.MapPost("/basket/increment", async (HttpContext context) =>
        {
            var session = await context.GetClusterSessionAsync();
            var basket = await session.UpdateAsync<V2.Basket>(Key, b => new V2.Basket((b?.Items ?? 0) + 1));
            return basket.Items.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        app.MapPost("/basket/{count:int}", async (HttpContext context, int count) =>
        {
            var session = await context.GetClusterSessionAsync();
            session.Set(Key, new V2.Basket(count));
            return "ok";
        });
        app.MapGet("/basket", async (HttpContext context) =>
            (await context.GetClusterSessionAsync()).Get<V2.Basket>(Key) is { } basket ? basket.Items.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(none)");
        app.MapGet("/basket/caught", async (HttpContext context) =>
        {
            try
            {
                return (await context.GetClusterSessionAsync()).Get<V2.Basket>(Key)?.Items.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)";
            }
            catch (SessionAttributeUnreadableException ex)
            {
                return ex.GetType().Name + ": " + ex.RequestedType?.Name;
            }
        });
    }

    /// <summary>Counts <c>cluster_session.attribute.unreadable</c> by policy.</summary>
    private sealed class UnreadableCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

        public UnreadableCounter()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "ClusterSession.AspNetCore" && instrument.Name == "cluster_session.attribute.unreadable")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "cluster_session.policy" && tag.Value is string policy)
                    {
                        _counts.AddOrUpdate(policy, value, (_, v) => v + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Count(string policy) => _counts.GetValueOrDefault(policy);

        public void Dispose() => _listener.Dispose();
    }
}

/// <summary>The deploy-change tests over the in-memory store shared by the two instances in this process.</summary>
public sealed class InMemoryUnreadableAttributeTests : UnreadableAttributeTests
{
    protected override Task<ISessionStore> CreateStoreAsync() => Task.FromResult<ISessionStore>(new ClusterSession.InMemory.InMemorySessionStore());
}

/// <summary>The deploy-change tests over one redis-server shared by the two instances.</summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class RedisUnreadableAttributeTests(RedisServerFixture redis) : UnreadableAttributeTests
{
    protected override Task<ISessionStore> CreateStoreAsync()
        => Task.FromResult<ISessionStore>(new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = redis.Configuration,
            KeyPrefix = "asp" + Guid.NewGuid().ToString("N")[..12] + ":",
        }));
}
