using System.Text;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Key rotation over the shared key ring, with two service providers standing for two hosts (different
/// content roots, one application name): ClusterSession stores elements, Data Protection's key manager
/// decides which key protects, and every key in the ring stays readable.
/// </summary>
[Collection(MultiHostRedis.Name)]
public sealed class KeyRotationTests(RedisServerFixture redis)
{
    private static readonly byte[] Old = Encoding.UTF8.GetBytes("protected with the first key");
    private static readonly byte[] New = Encoding.UTF8.GetBytes("protected with the key created later");

    [Fact]
    public async Task A_key_created_later_and_the_old_key_both_unprotect_on_every_host()
    {
        var prefix = "rot" + Guid.NewGuid().ToString("N")[..8] + ":";
        await using var hostA = Host(prefix, "/srv/a/content");
        await using var hostB = Host(prefix, "/srv/b/content/");
        var protectorA = hostA.GetDataProtector("rotation");
        var protectorB = hostB.GetDataProtector("rotation");

        var oldPayload = protectorA.Protect(Old);
        var laterKey = hostB.GetRequiredService<IKeyManager>().CreateNewKey(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(90));
        var newPayload = protectorB.Protect(New);

        Assert.Equal(laterKey.KeyId, KeyIdOf(newPayload));
        Assert.NotEqual(KeyIdOf(oldPayload), KeyIdOf(newPayload));
        foreach (var protector in new[] { protectorA, protectorB })
        {
            Assert.Equal(Old, protector.Unprotect(oldPayload));
            Assert.Equal(New, protector.Unprotect(newPayload));
        }

        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        Assert.Equal(2, await connection.GetDatabase().ListLengthAsync(prefix + "dataprotection-keys"));
    }

    [Fact]
    public async Task Discriminator_is_the_application_name_when_keys_are_shared_and_the_app_set_none()
    {
        await using var host = Host("disc" + Guid.NewGuid().ToString("N")[..8] + ":", "/srv/c/content");
        Assert.Equal("RotationApp", host.GetRequiredService<Microsoft.Extensions.Options.IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator);

        await using var named = Host("disc" + Guid.NewGuid().ToString("N")[..8] + ":", "/srv/d/content", services => services.AddDataProtection().SetApplicationName("chosen"));
        Assert.Equal("chosen", named.GetRequiredService<Microsoft.Extensions.Options.IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator);
    }

    private ServiceProvider Host(string prefix, string contentRoot, Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IHostEnvironment>(new HostingEnvironment
        {
            ApplicationName = "RotationApp",
            EnvironmentName = Environments.Production,
            ContentRootPath = contentRoot,
            ContentRootFileProvider = new NullFileProvider(),
        });
        services.AddDataProtection();
        configure?.Invoke(services);
        services.AddClusterSession(options => options.UseRedis(store =>
        {
            store.Configuration = redis.Configuration;
            store.KeyPrefix = prefix;
        }));
        return services.BuildServiceProvider();
    }

    /// <summary>A Data Protection payload starts with a 4-byte magic header followed by the id of the key that protected it.</summary>
    private static Guid KeyIdOf(byte[] payload) => new(payload.AsSpan(4, 16));
}
