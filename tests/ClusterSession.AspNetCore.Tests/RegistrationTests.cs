using ClusterSession.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>Sign-in rotation and the ticket store hook in whichever order the app registers authentication.</summary>
public sealed class RegistrationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Authentication_service_is_wrapped_and_cookie_tickets_go_to_the_session_in_any_registration_order(bool authenticationFirst)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        if (authenticationFirst)
        {
            services.AddAuthentication().AddCookie();
        }

        services.AddClusterSession(options => options.UseInMemory());
        if (!authenticationFirst)
        {
            services.AddAuthentication().AddCookie();
        }

        using var provider = services.BuildServiceProvider();
        using var scope = provider.CreateScope();

        Assert.IsType<SessionAuthenticationService>(scope.ServiceProvider.GetRequiredService<IAuthenticationService>());
        var cookieOptions = provider.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>().Get(CookieAuthenticationDefaults.AuthenticationScheme);
        Assert.IsType<SessionTicketStore>(cookieOptions.SessionStore);
    }

    [Fact]
    public void Calling_AddClusterSession_twice_wraps_the_authentication_service_once()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddAuthentication().AddCookie();
        services.AddClusterSession(options => options.UseInMemory());
        services.AddClusterSession(options => options.IdleTimeout = TimeSpan.FromMinutes(5));

        using var provider = services.BuildServiceProvider();
        using var scope = provider.CreateScope();

        var service = Assert.IsType<SessionAuthenticationService>(scope.ServiceProvider.GetRequiredService<IAuthenticationService>());
        Assert.Single(services, d => d.ServiceType == typeof(IAuthenticationService));
        Assert.NotNull(service);
    }

    [Fact]
    public void Ticket_store_is_left_out_when_disabled()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddAuthentication().AddCookie();
        services.AddClusterSession(options =>
        {
            options.UseInMemory();
            options.StoreAuthenticationTickets = false;
        });

        using var provider = services.BuildServiceProvider();

        Assert.Null(provider.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>().Get(CookieAuthenticationDefaults.AuthenticationScheme).SessionStore);
    }
}

/// <summary>Each store package registers itself on <see cref="ClusterSessionOptions"/> through <see cref="ISessionStoreBuilder"/>.</summary>
public sealed class StoreRegistrationTests
{
    [Fact]
    public async Task UseRedis_registers_the_redis_store()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddClusterSession(options => options.UseRedis("127.0.0.1:1,abortConnect=false,connectTimeout=100"));

        await using var provider = services.BuildServiceProvider();

        Assert.IsType<ClusterSession.Redis.RedisSessionStore>(provider.GetRequiredService<ISessionStore>());
    }

    [Fact]
    public async Task UsePostgres_registers_the_postgres_store()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddClusterSession(options => options.UsePostgres("Host=127.0.0.1;Port=1;Username=none"));

        await using var provider = services.BuildServiceProvider();

        Assert.IsType<ClusterSession.Postgres.PostgresSessionStore>(provider.GetRequiredService<ISessionStore>());
    }

    [Fact]
    public void Store_extensions_chain_on_the_options_type()
    {
        var options = new ClusterSessionOptions();

        ClusterSessionOptions chained = options.UseRedis("127.0.0.1:1").UsePostgres("Host=127.0.0.1");

        Assert.Same(options, chained);
    }
}
