using System.Net;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

[CollectionDefinition(Name)]
public sealed class MultiHostRedis : ICollectionFixture<RedisServerFixture>
{
    public const string Name = "multi-host redis";
}

/// <summary>When the application chose where its keys live, or turned sharing off, ClusterSession stays out of Data Protection.</summary>
[Collection(MultiHostRedis.Name)]
public sealed class KeyPersistenceChoiceTests(RedisServerFixture redis)
{
    [Fact]
    public async Task App_that_persists_its_own_keys_keeps_them_where_it_said()
    {
        var prefix = NewPrefix();
        var hosts = await AppHost.StartManyAsync(2, paths => [.. RedisArguments(prefix), "--KeysDirectory", Path.Combine(paths.Home, "own-keys")]);
        try
        {
            var browser = new Browser();
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts[0], "/signin/carol")).Status);
            Assert.Equal((HttpStatusCode.OK, "carol"), await browser.GetAsync(hosts[0], "/me"));

            Assert.NotEmpty(Directory.GetFiles(Path.Combine(hosts[0].Home, "own-keys"), "key-*.xml"));
            Assert.False(await KeyRingExistsAsync(prefix));

            // Each host has its own folder here, as the app configured: its cookies are its own.
            Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(hosts[1], "/me")).Status);
        }
        finally
        {
            await DisposeAllAsync(hosts);
        }
    }

    [Fact]
    public async Task With_sharing_off_keys_stay_in_each_home_and_the_other_host_rejects_the_cookie()
    {
        var prefix = NewPrefix();
        var hosts = await AppHost.StartManyAsync(2, _ => [.. RedisArguments(prefix), "--ShareKeys", "false"]);
        try
        {
            var browser = new Browser();
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts[0], "/signin/dave")).Status);
            Assert.Equal((HttpStatusCode.OK, "dave"), await browser.GetAsync(hosts[0], "/me"));

            Assert.NotEmpty(Directory.GetFiles(Path.Combine(hosts[0].Home, ".aspnet", "DataProtection-Keys"), "key-*.xml"));
            Assert.False(await KeyRingExistsAsync(prefix));
            Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(hosts[1], "/me")).Status);
        }
        finally
        {
            await DisposeAllAsync(hosts);
        }
    }

    private static string NewPrefix() => "mh" + Guid.NewGuid().ToString("N")[..8] + ":";

    private string[] RedisArguments(string prefix) => ["--Store", "redis", "--Redis", redis.Configuration, "--Prefix", prefix];

    private async Task<bool> KeyRingExistsAsync(string prefix)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        return await connection.GetDatabase().KeyExistsAsync(prefix + "dataprotection-keys");
    }

    private static async Task DisposeAllAsync(AppHost[] hosts)
    {
        foreach (var host in hosts)
        {
            await host.DisposeAsync();
        }
    }
}
