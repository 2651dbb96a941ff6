using System.Net;
using System.Text;
using ClusterSession.AspNetCore.Protection;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;

namespace ClusterSession.AspNetCore.Tests.ValueEncryption;

/// <summary>
/// <see cref="ClusterSessionOptions.EncryptValues"/> through real app instances on a real redis-server, read back
/// raw with <c>HGETALL</c> as whoever can read the store would.
/// </summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class ValueEncryptionAppTests(RedisServerFixture redis) : IAsyncLifetime
{
    private const string Marker = "MARKER-9c1e5b";
    private readonly string _prefix = "venc" + Guid.NewGuid().ToString("N")[..12] + ":";
    private ConnectionMultiplexer? _connection;

    private IDatabase Redis => _connection!.GetDatabase();

    public async Task InitializeAsync() => _connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);

    public async Task DisposeAsync() => await _connection!.DisposeAsync();

    [Fact]
    public async Task Redis_holds_no_plaintext_value_while_the_app_reads_every_value_back()
    {
        await using var cluster = await AppCluster.StartAsync(NewStore(), instances: 2, configure: o => o.EncryptValues = true);
        var browser = new Browser();
        Assert.Equal("signed in", (await browser.PostAsync(cluster[0], "/login/" + Marker + "-user")).Body);
        Assert.Equal("ok", (await browser.PostAsync(cluster[0], "/s/set/note/" + Marker + "-string")).Body);
        Assert.Equal("ok", (await browser.PostAsync(cluster[1], "/c/set/cart/" + Marker + "-typed")).Body);

        Assert.Equal(Marker + "-string", (await browser.GetAsync(cluster[1], "/s/get/note")).Body);
        Assert.Equal(Marker + "-typed", (await browser.GetAsync(cluster[0], "/c/get/cart")).Body);
        Assert.Equal(Marker + "-user", (await browser.GetAsync(cluster[1], "/me")).Body);

        var fields = await SessionFieldsAsync();
        var attributes = fields.Where(f => f.Name.ToString().StartsWith('@')).ToList();
        // note, cart, and ClusterSession's own: the ticket, its key and the User-Agent.
        Assert.True(attributes.Count >= 5, $"{attributes.Count} attribute fields");
        Assert.Contains(attributes, f => f.Name.ToString().Contains("ticket", StringComparison.Ordinal));
        foreach (var field in attributes)
        {
            Assert.True(AttributeValueProtector.IsProtected((byte[])field.Value!), $"{field.Name} is not encrypted");
        }

        // No value shows the marker; the principal (a metadata field, readable by design) is the only place the user name is.
        Assert.DoesNotContain(attributes, f => Encoding.Latin1.GetString((byte[])f.Value!).Contains(Marker, StringComparison.Ordinal));
        Assert.DoesNotContain(attributes, f => Encoding.Latin1.GetString((byte[])f.Value!).Contains("TestBrowser", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Turning_encryption_on_signs_no_one_out_and_turning_it_off_keeps_reading_encrypted_values()
    {
        var store = new ObservedStore(NewStore());
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        try
        {
            var browser = new Browser();
            await using (var plain = await TestApp.StartAsync(store, keys))
            {
                await browser.PostAsync(plain.Address, "/login/olga");
                await browser.PostAsync(plain.Address, "/s/set/note/written-plain");
            }

            Assert.DoesNotContain(await SessionFieldsAsync(), f => AttributeValueProtector.IsProtected((byte[])f.Value!));

            await using (var encrypting = await TestApp.StartAsync(store, keys, o => o.EncryptValues = true))
            {
                Assert.Equal("olga", (await browser.GetAsync(encrypting.Address, "/me")).Body);
                Assert.Equal("written-plain", (await browser.GetAsync(encrypting.Address, "/s/get/note")).Body);
                await browser.PostAsync(encrypting.Address, "/s/set/note/written-encrypted");
                await browser.PostAsync(encrypting.Address, "/c/renew");
            }

            Assert.Contains(await SessionFieldsAsync(), f => AttributeValueProtector.IsProtected((byte[])f.Value!));

            await using var off = await TestApp.StartAsync(store, keys, o => o.EncryptValues = false);
            Assert.Equal("olga", (await browser.GetAsync(off.Address, "/me")).Body);
            Assert.Equal("written-encrypted", (await browser.GetAsync(off.Address, "/s/get/note")).Body);
        }
        finally
        {
            keys.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_value_whose_key_is_gone_reads_as_absent_with_a_warning_not_a_500()
    {
        var store = NewStore();
        var logs = new ListLoggerProvider();
        await using var writer = await AppCluster.StartAsync(store, instances: 1, configure: o => o.EncryptValues = true);
        // Another key ring: as a host whose keys were lost or never shared.
        await using var reader = await AppCluster.StartAsync(store, instances: 1, configure: o => o.EncryptValues = true, logs: logs);
        var browser = new Browser();
        await browser.PostAsync(writer[0], "/s/set/note/secret");

        var read = await browser.GetAsync(reader[0], "/s/get/note");

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("(none)", read.Body);
        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == 25 && e.Category.StartsWith("ClusterSession", StringComparison.Ordinal));
        Assert.DoesNotContain("secret", warning.Text, StringComparison.Ordinal);
        Assert.Equal("secret", (await browser.GetAsync(writer[0], "/s/get/note")).Body);
    }

    [Fact]
    public async Task Concurrent_atomic_increments_through_two_instances_lose_nothing()
    {
        await using var cluster = await AppCluster.StartAsync(NewStore(), instances: 2, configure: o => o.EncryptValues = true);
        var browser = new Browser();
        Assert.Equal("1", (await browser.PostAsync(cluster[0], "/c/incr/count")).Body);
        const int Requests = 60;

        var responses = await Task.WhenAll(Enumerable.Range(0, Requests).Select(i => Task.Run(() => browser.PostAsync(cluster[i % 2], "/c/incr/count"))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.Equal(Requests + 1, responses.Select(r => int.Parse(r.Body, System.Globalization.CultureInfo.InvariantCulture)).Max());
        Assert.Equal(Enumerable.Range(2, Requests), responses.Select(r => int.Parse(r.Body, System.Globalization.CultureInfo.InvariantCulture)).Order());
    }

    private RedisSessionStore NewStore() => new(new RedisSessionStoreOptions { Configuration = redis.Configuration, KeyPrefix = _prefix });

    /// <summary>Every field of every session hash under this test's prefix, raw.</summary>
    private async Task<List<HashEntry>> SessionFieldsAsync()
    {
        var server = _connection!.GetServers().Single();
        var fields = new List<HashEntry>();
        await foreach (var key in server.KeysAsync(pattern: _prefix + "s3:*"))
        {
            fields.AddRange(await Redis.HashGetAllAsync(key));
        }

        Assert.NotEmpty(fields);
        return fields;
    }
}
