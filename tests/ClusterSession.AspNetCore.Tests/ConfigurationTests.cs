using System.Net;
using ClusterSession.InMemory;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>A real Kestrel app on 127.0.0.1 built from configuration (as appsettings.json gives it), with a set and a get endpoint.</summary>
internal sealed class ConfiguredApp : IAsyncDisposable
{
    private ConfiguredApp(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    public static async Task<ConfiguredApp> StartAsync(IDictionary<string, string?> settings, Action<WebApplicationBuilder> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        configure(builder);
        var app = builder.Build();
        try
        {
            app.UseClusterSession();
            app.MapPost("/set/{value}", (HttpContext context, string value) =>
            {
                context.Session.SetString("v", value);
                return "ok";
            });
            app.MapGet("/get", (HttpContext context) => context.Session.GetString("v") ?? "(none)");
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new ConfiguredApp(app, new Uri(address));
    }

    /// <summary>A value written through one request is read by the next: the configured store works.</summary>
    public async Task AssertRoundTripAsync()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(Address, "/set/hello")).Status);
        Assert.Equal("hello", (await browser.GetAsync(Address, "/get")).Body);
    }

    public ValueTask DisposeAsync() => App.DisposeAsync();
}

/// <summary>Options from a configuration section (appsettings.json), validated at start-up with the messages of the code path.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public void Every_kind_of_option_binds_from_the_section_and_the_code_action_applies_after_it()
    {
        var section = Section(new()
        {
            ["ClusterSession:IdleTimeout"] = "00:05:00",
            ["ClusterSession:AbsoluteLifetime"] = "02:00:00",
            ["ClusterSession:Transports"] = "Cookie, Header",
            ["ClusterSession:HeaderName"] = "X-Configured",
            ["ClusterSession:Cookie:Name"] = "__Host-app",
            ["ClusterSession:Cookie:SameSite"] = "Strict",
            ["ClusterSession:Cookie:SecurePolicy"] = "Always",
            ["ClusterSession:CircuitBreaker:BreakDuration"] = "00:00:09",
            ["ClusterSession:Limits:MaxAttributes"] = "50",
            ["ClusterSession:MaxSessionsPerPrincipal"] = "3",
            ["ClusterSession:SessionCapPolicy"] = "RefuseNewSession",
            ["ClusterSession:Store:Kind"] = "InMemory",
            ["ClusterSession:Store:InMemory:SweepInterval"] = "00:00:30",
        });
        var services = new ServiceCollection().AddLogging();
        services.AddClusterSession(section, o => o.HeaderName = "X-From-Code");
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<ClusterSessionOptions>>().Value;

        Assert.Equal(TimeSpan.FromMinutes(5), options.IdleTimeout);
        Assert.Equal(TimeSpan.FromHours(2), options.AbsoluteLifetime);
        Assert.Equal(SessionIdTransports.Cookie | SessionIdTransports.Header, options.Transports);
        Assert.Equal("X-From-Code", options.HeaderName);
        Assert.Equal("__Host-app", options.Cookie.Name);
        Assert.Equal(SameSiteMode.Strict, options.Cookie.SameSite);
        Assert.Equal(CookieSecurePolicy.Always, options.Cookie.SecurePolicy);
        Assert.True(options.Cookie.HttpOnly);
        Assert.Equal(TimeSpan.FromSeconds(9), options.CircuitBreaker.BreakDuration);
        Assert.Equal(50, options.Limits.MaxAttributes);
        Assert.Equal(1000, SessionLimits.Default.MaxAttributes);
        Assert.Equal(3, options.MaxSessionsPerPrincipal);
        Assert.Equal(SessionCapPolicy.RefuseNewSession, options.SessionCapPolicy);
        Assert.IsType<InMemorySessionStore>(provider.GetRequiredService<ISessionStore>());
    }

    [Fact]
    public void A_store_chosen_in_code_replaces_the_one_configuration_names()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddClusterSession(Section(new() { ["ClusterSession:Store:Kind"] = "Nonexistent" }), o => o.UseInMemory());
        using var provider = services.BuildServiceProvider();

        Assert.IsType<InMemorySessionStore>(provider.GetRequiredService<ISessionStore>());
    }

    [Fact]
    public async Task An_invalid_option_from_configuration_fails_at_startup_with_the_message_of_the_code_path()
    {
        var fromCode = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?>(),
            b => b.Services.AddClusterSession(o => o.UseInMemory().IdleTimeout = TimeSpan.Zero)));
        var fromConfiguration = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ClusterSession:IdleTimeout"] = "00:00:00", ["ClusterSession:Store:Kind"] = "InMemory" },
            b => b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"))));

        Assert.Contains("ClusterSessionOptions.IdleTimeout must be positive", fromCode.Message, StringComparison.Ordinal);
        Assert.Equal(fromCode.Failures, fromConfiguration.Failures);
    }

    [Fact]
    public async Task An_invalid_store_option_from_configuration_fails_at_startup_with_the_store_message()
    {
        var fromCode = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?>(),
            b => b.Services.AddClusterSession(o => o.UseInMemory(m => m.SweepBatchSize = 0))));
        var fromConfiguration = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ClusterSession:Store:Kind"] = "InMemory", ["ClusterSession:Store:InMemory:SweepBatchSize"] = "0" },
            b => b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"))));

        Assert.StartsWith("InMemorySessionStoreOptions.SweepBatchSize is 0: ", fromCode.Failures.Single(), StringComparison.Ordinal);
        Assert.Equal(fromCode.Failures, fromConfiguration.Failures);
    }

    [Fact]
    public async Task Limits_in_a_store_section_fail_as_limits_set_on_the_store_in_code_do()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ClusterSession:Store:Kind"] = "InMemory", ["ClusterSession:Store:InMemory:Limits:MaxAttributes"] = "5" },
            b => b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"))));

        Assert.Contains("InMemorySessionStoreOptions.Limits differs from the limits of the host", error.Message, StringComparison.Ordinal);
        Assert.Equal(1000, SessionLimits.Default.MaxAttributes);
    }

    [Theory]
    [InlineData(null, "ClusterSession:Store:Kind is missing")]
    [InlineData("Redis", "ClusterSession:Store:Kind is \"Redis\", which no registered store has: use one of InMemory, or register it")]
    public async Task A_missing_or_unregistered_store_kind_fails_at_startup_naming_the_setting(string? kind, string message)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ClusterSession:Store:Kind"] = kind, ["ClusterSession:Store:Redis:Configuration"] = "127.0.0.1:1" },
            b => b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"))));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_in_memory_store_from_configuration_serves_sessions()
    {
        await using var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ClusterSession:Store:Kind"] = "inmemory", ["ClusterSession:Cookie:Name"] = "configured" },
            b => b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession")));

        var browser = new Browser();
        await browser.PostAsync(app.Address, "/set/x");
        Assert.True(browser.Cookies.ContainsKey("configured"));
        await app.AssertRoundTripAsync();
    }

    private static IConfigurationSection Section(Dictionary<string, string?> settings)
        => new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("ClusterSession");
}

/// <summary>The Redis store from configuration, and from the multiplexer Aspire's client integration registers, on redis-server.</summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class RedisConfigurationTests(RedisServerFixture redis)
{
    private readonly string _prefix = "cfg" + Guid.NewGuid().ToString("N")[..12] + ":";

    [Fact]
    public async Task Redis_store_and_its_options_come_from_configuration()
    {
        await using (var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?>
            {
                ["ClusterSession:Store:Kind"] = "Redis",
                ["ClusterSession:Store:Redis:Configuration"] = redis.Configuration,
                ["ClusterSession:Store:Redis:KeyPrefix"] = _prefix,
                ["ClusterSession:Store:Redis:OperationTimeout"] = "00:00:03",
            },
            b =>
            {
                b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"));
                b.Services.AddRedisSessionStoreKind();
            }))
        {
            Assert.IsType<RedisSessionStore>(app.App.Services.GetRequiredService<ISessionStore>());
            await app.AssertRoundTripAsync();
        }

        await using var check = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        Assert.NotEmpty(check.GetServer(check.GetEndPoints()[0]).Keys(pattern: _prefix + "*"));
    }

    [Fact]
    public async Task An_invalid_redis_option_from_configuration_fails_at_startup_with_the_store_message()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ConfiguredApp.StartAsync(
            new Dictionary<string, string?>
            {
                ["ClusterSession:Store:Kind"] = "Redis",
                ["ClusterSession:Store:Redis:Configuration"] = redis.Configuration,
                ["ClusterSession:Store:Redis:KeyPrefix"] = "{bad}",
            },
            b =>
            {
                b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"));
                b.Services.AddRedisSessionStoreKind();
            }));

        Assert.StartsWith("RedisSessionStoreOptions.KeyPrefix is \"{bad}\": ", error.Failures.Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_multiplexer_of_AddRedisClient_is_used_and_never_disposed_by_the_store()
    {
        IConnectionMultiplexer multiplexer;
        await using (var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ConnectionStrings:cache"] = redis.Configuration },
            b =>
            {
                b.AddRedisClient("cache");
                b.Services.AddClusterSession(o => o.UseRedis(sp => sp.GetRequiredService<IConnectionMultiplexer>(), r => r.KeyPrefix = _prefix));
            }))
        {
            await app.AssertRoundTripAsync();
            multiplexer = app.App.Services.GetRequiredService<IConnectionMultiplexer>();
            Assert.NotEmpty(multiplexer.GetServer(multiplexer.GetEndPoints()[0]).Keys(pattern: _prefix + "*"));

            // The store goes; the application's multiplexer stays usable.
            await ((IAsyncDisposable)app.App.Services.GetRequiredService<ISessionStore>()).DisposeAsync();
            Assert.True(multiplexer.IsConnected);
            await multiplexer.GetDatabase().PingAsync();
        }
    }

    [Fact]
    public async Task Store_kind_from_configuration_takes_the_multiplexer_of_AddRedisClient()
    {
        await using var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?>
            {
                ["ConnectionStrings:cache"] = redis.Configuration,
                ["ClusterSession:Store:Kind"] = "Redis",
                ["ClusterSession:Store:Redis:KeyPrefix"] = _prefix,
            },
            b =>
            {
                b.AddRedisClient("cache");
                b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"));
                b.Services.AddRedisSessionStoreKind(sp => sp.GetRequiredService<IConnectionMultiplexer>());
            });

        await app.AssertRoundTripAsync();
        var multiplexer = app.App.Services.GetRequiredService<IConnectionMultiplexer>();
        Assert.NotEmpty(multiplexer.GetServer(multiplexer.GetEndPoints()[0]).Keys(pattern: _prefix + "*"));
    }
}

/// <summary>The PostgreSQL store from configuration, and from the data source Aspire's client integration registers.</summary>
[Collection(AspNetCorePostgres.Name)]
public sealed class PostgresConfigurationTests(PostgresServerFixture postgres)
{
    private readonly string _prefix = "c" + Guid.NewGuid().ToString("N")[..12] + "_";

    [Fact]
    public async Task Postgres_store_and_its_options_come_from_configuration()
    {
        await using var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?>
            {
                ["ClusterSession:Store:Kind"] = "Postgres",
                ["ClusterSession:Store:Postgres:ConnectionString"] = postgres.ConnectionString,
                ["ClusterSession:Store:Postgres:Schema"] = "cs_config_tests",
                ["ClusterSession:Store:Postgres:TablePrefix"] = _prefix,
                ["ClusterSession:Store:Postgres:CreateSchemaOnStartup"] = "true",
                ["ClusterSession:Store:Postgres:CleanupInterval"] = "-00:00:00.001",
            },
            b =>
            {
                b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"));
                b.Services.AddPostgresSessionStoreKind();
            });

        Assert.IsType<PostgresSessionStore>(app.App.Services.GetRequiredService<ISessionStore>());
        await app.AssertRoundTripAsync();
        Assert.Equal(1L, await CountSessionsAsync());
    }

    [Fact]
    public async Task The_data_source_of_AddNpgsqlDataSource_is_used_and_never_disposed_by_the_store()
    {
        await using var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?> { ["ConnectionStrings:db"] = postgres.ConnectionString },
            b =>
            {
                b.AddNpgsqlDataSource("db");
                b.Services.AddClusterSession(o => o.UsePostgres(
                    sp => sp.GetRequiredService<NpgsqlDataSource>(),
                    p =>
                    {
                        p.Schema = "cs_config_tests";
                        p.TablePrefix = _prefix;
                        p.CreateSchemaOnStartup = true;
                        p.CleanupInterval = Timeout.InfiniteTimeSpan;
                    }));
            });

        await app.AssertRoundTripAsync();
        Assert.Equal(1L, await CountSessionsAsync());

        // The store goes; the application's data source stays usable.
        var dataSource = app.App.Services.GetRequiredService<NpgsqlDataSource>();
        await ((IAsyncDisposable)app.App.Services.GetRequiredService<ISessionStore>()).DisposeAsync();
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        Assert.Equal(1, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Store_kind_from_configuration_takes_the_data_source_of_AddNpgsqlDataSource()
    {
        await using var app = await ConfiguredApp.StartAsync(
            new Dictionary<string, string?>
            {
                ["ConnectionStrings:db"] = postgres.ConnectionString,
                ["ClusterSession:Store:Kind"] = "Postgres",
                ["ClusterSession:Store:Postgres:Schema"] = "cs_config_tests",
                ["ClusterSession:Store:Postgres:TablePrefix"] = _prefix,
                ["ClusterSession:Store:Postgres:CreateSchemaOnStartup"] = "true",
            },
            b =>
            {
                b.AddNpgsqlDataSource("db");
                b.Services.AddClusterSession(b.Configuration.GetSection("ClusterSession"));
                b.Services.AddPostgresSessionStoreKind(sp => sp.GetRequiredService<NpgsqlDataSource>());
            });

        await app.AssertRoundTripAsync();
        Assert.Equal(1L, await CountSessionsAsync());
    }

    private async Task<long> CountSessionsAsync()
    {
        await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM cs_config_tests.\"{_prefix}sessions\"");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
