using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Options;

namespace ClusterSession.MultiHost.Tests;

/// <summary>Where ClusterSession leaves Data Protection as ASP.NET Core configures it (no server needed: nothing connects).</summary>
public sealed class DataProtectionRegistrationTests
{
    private const string ContentRoot = "/srv/app/content";

    [Fact]
    public async Task In_memory_store_has_nothing_to_share_and_leaves_Data_Protection_alone()
    {
        await using var services = Build(options => options.UseInMemory());

        Assert.Null(services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.XmlRepository);
        Assert.Equal(ContentRoot, services.GetRequiredService<IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator?.TrimEnd('/'));
    }

    [Fact]
    public async Task Shared_store_with_the_option_off_leaves_Data_Protection_alone()
    {
        await using var services = Build(options =>
        {
            options.ShareDataProtectionKeys = false;
            options.UseRedis("127.0.0.1:1");
        });

        Assert.Null(services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.XmlRepository);
        Assert.Equal(ContentRoot, services.GetRequiredService<IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator?.TrimEnd('/'));
    }

    [Fact]
    public async Task Shared_store_keeps_the_key_ring_and_the_application_name_becomes_the_discriminator()
    {
        await using var services = Build(options => options.UseRedis("127.0.0.1:1"));

        Assert.NotNull(services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.XmlRepository);
        Assert.Equal("RegistrationApp", services.GetRequiredService<IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator);
    }

    private static ServiceProvider Build(Action<ClusterSessionOptions> configure)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IHostEnvironment>(new HostingEnvironment
        {
            ApplicationName = "RegistrationApp",
            EnvironmentName = Environments.Production,
            ContentRootPath = ContentRoot,
            ContentRootFileProvider = new NullFileProvider(),
        });
        services.AddDataProtection();
        services.AddClusterSession(configure);
        return services.BuildServiceProvider();
    }
}
