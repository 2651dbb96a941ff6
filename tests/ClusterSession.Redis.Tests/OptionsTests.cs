using ClusterSession.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace ClusterSession.Redis.Tests;

public sealed class OptionsTests
{
    [Fact]
    public void Missing_configuration_is_rejected_with_a_message_naming_the_option()
    {
        var error = Assert.Throws<OptionsValidationException>(() => new RedisSessionStore(new RedisSessionStoreOptions()));
        Assert.Contains("RedisSessionStoreOptions.Configuration", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("app{x}:", "KeyPrefix")]
    public void Prefix_with_a_hash_tag_brace_is_rejected(string prefix, string option)
    {
        var error = Assert.Throws<OptionsValidationException>(() => new RedisSessionStore(new RedisSessionStoreOptions { Configuration = "127.0.0.1:1", KeyPrefix = prefix }));
        Assert.Contains(option, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Blank_key_ring_key_is_rejected_and_null_defaults_to_the_prefix()
    {
        var error = Assert.Throws<OptionsValidationException>(() => new RedisSessionStore(new RedisSessionStoreOptions { Configuration = "127.0.0.1:1", KeyRingKey = " " }));
        Assert.Contains("RedisSessionStoreOptions.KeyRingKey", error.Message, StringComparison.Ordinal);

        Assert.Equal("app:dataprotection-keys", new RedisSessionStore(new RedisSessionStoreOptions { Configuration = "127.0.0.1:1", KeyPrefix = "app:" }).KeyRingKey);
        Assert.Equal("ring", new RedisSessionStore(new RedisSessionStoreOptions { Configuration = "127.0.0.1:1", KeyRingKey = "ring" }).KeyRingKey);
    }

    [Fact]
    public void Out_of_range_touch_fraction_and_timeout_are_rejected()
    {
        var error = Assert.Throws<OptionsValidationException>(() => new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = "127.0.0.1:1",
            TouchIntervalFraction = 0.9,
            OperationTimeout = TimeSpan.Zero,
        }));
        Assert.Contains("TouchIntervalFraction", error.Message, StringComparison.Ordinal);
        Assert.Contains("OperationTimeout", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1, 1000, "WaitForReplicas")]
    [InlineData(17, 1000, "WaitForReplicas")]
    [InlineData(1, 0, "ReplicaWaitTimeout")]
    [InlineData(1, 5000, "ReplicaWaitTimeout")]
    public void Replica_wait_out_of_range_or_not_shorter_than_the_operation_timeout_is_rejected(int replicas, int waitMs, string option)
    {
        var error = Assert.Throws<OptionsValidationException>(() => new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = "127.0.0.1:1",
            WaitForReplicas = replicas,
            ReplicaWaitTimeout = TimeSpan.FromMilliseconds(waitMs),
            OperationTimeout = TimeSpan.FromSeconds(5),
        }));
        Assert.Contains("RedisSessionStoreOptions." + option, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replica_wait_options_reach_a_store_built_on_a_shared_multiplexer()
    {
        // The multiplexer constructor copies the options; WaitForReplicas must survive the copy. With no replica, a write fails cleanly.
        await using var server = await RedisProcess.StartAsync();
        await using var multiplexer = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{server.Port}");
        await using var store = new RedisSessionStore(multiplexer, new RedisSessionStoreOptions { WaitForReplicas = 1, ReplicaWaitTimeout = TimeSpan.FromMilliseconds(100) });
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1));
        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CreateAsync(session));
        Assert.Contains("0 of the 1 replica", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseRedis_creates_a_validated_store_with_the_host_limits_only()
    {
        var builder = new TestSessionStoreBuilder();
        builder.UseRedis("127.0.0.1:1");
        await using (var store = Assert.IsType<RedisSessionStore>(builder.CreateStore()))
        {
            Assert.Equal("cs:dataprotection-keys", store.KeyRingKey);
        }

        var invalid = new TestSessionStoreBuilder().UseRedis(o => o.KeyPrefix = "x");
        Assert.Contains("RedisSessionStoreOptions.Configuration", Assert.Throws<OptionsValidationException>(() => invalid.CreateStore()).Message, StringComparison.Ordinal);

        var disagreeing = new TestSessionStoreBuilder().UseRedis(o =>
        {
            o.Configuration = "127.0.0.1:1";
            o.Limits = new SessionLimits { MaxAttributes = 2 };
        });
        Assert.Contains("RedisSessionStoreOptions.Limits", Assert.Throws<OptionsValidationException>(() => disagreeing.CreateStore()).Message, StringComparison.Ordinal);
    }
}
