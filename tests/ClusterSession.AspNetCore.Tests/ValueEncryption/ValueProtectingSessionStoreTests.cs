using System.Text;
using ClusterSession.AspNetCore.Protection;
using ClusterSession.InMemory;
using Microsoft.AspNetCore.DataProtection;

namespace ClusterSession.AspNetCore.Tests.ValueEncryption;

/// <summary>The encrypting layer over the in-memory store, whose raw contents the tests read through the inner store.</summary>
public sealed class ValueProtectingSessionStoreTests : IDisposable
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(2);

    private readonly InMemorySessionStore _raw = new();
    private readonly ObservedStore _observed;
    private readonly IDataProtectionProvider _keys = new EphemeralDataProtectionProvider();
    private readonly ValueProtectingSessionStore _store;

    public ValueProtectingSessionStoreTests()
    {
        _observed = new ObservedStore(_raw);
        _store = Layer(encrypt: true);
    }

    public void Dispose() => _raw.Dispose();

    [Fact]
    public async Task Values_are_ciphertext_in_the_store_and_plaintext_when_loaded()
    {
        var id = await CreateAsync(("cart", "marker-7f3a"), ("__cs.ticket", "ticket-marker-7f3a"));
        await _store.SaveAsync(new SessionChanges(id, Values(("theme", "dark-marker-7f3a"))));

        var raw = (await _raw.LoadAsync(id))!;
        Assert.Equal(3, raw.Attributes.Count);
        foreach (var value in raw.Attributes.Values)
        {
            Assert.True(AttributeValueProtector.IsProtected(value));
            Assert.DoesNotContain("7f3a", Encoding.Latin1.GetString(value), StringComparison.Ordinal);
        }

        var loaded = (await _store.LoadAsync(id))!;
        Assert.Equal("marker-7f3a", Text(loaded.Attributes["cart"]));
        Assert.Equal("ticket-marker-7f3a", Text(loaded.Attributes["__cs.ticket"]));
        Assert.Equal("dark-marker-7f3a", Text(loaded.Attributes["theme"]));
    }

    [Fact]
    public async Task Plain_values_written_before_encryption_read_as_they_are_and_are_encrypted_when_rewritten()
    {
        var id = SessionId.Create();
        Assert.True(await _raw.CreateAsync(SessionSnapshot.CreateNew(id, DateTimeOffset.UtcNow, Idle, Lifetime, Values(("old", "plain"), ("n", "\0\0\0\u0007")))));

        var loaded = (await _store.LoadAsync(id))!;
        Assert.Equal("plain", Text(loaded.Attributes["old"]));
        Assert.Equal("\0\0\0\u0007", Text(loaded.Attributes["n"]));

        await _store.SaveAsync(new SessionChanges(id, Values(("old", "rewritten"))));
        Assert.True(AttributeValueProtector.IsProtected((await _raw.LoadAsync(id))!.Attributes["old"]));
        Assert.Equal("rewritten", Text((await _store.LoadAsync(id))!.Attributes["old"]));
    }

    [Fact]
    public async Task With_encryption_turned_off_encrypted_values_still_read_and_new_writes_are_plain()
    {
        var id = await CreateAsync(("cart", "encrypted-then"));
        var off = Layer(encrypt: false);

        Assert.Equal("encrypted-then", Text((await off.LoadAsync(id))!.Attributes["cart"]));
        await off.SaveAsync(new SessionChanges(id, Values(("theme", "plain-now"))));
        Assert.Equal("plain-now", Text((await _raw.LoadAsync(id))!.Attributes["theme"]));
        Assert.Equal(AttributeCasStatus.Succeeded, (await off.CompareAndSetAttributeAsync(id, "cart", Bytes("encrypted-then"), Bytes("plain-too"))).Status);
        Assert.Equal("plain-too", Text((await _raw.LoadAsync(id))!.Attributes["cart"]));
    }

    [Fact]
    public async Task A_value_moved_to_another_name_in_the_store_does_not_decrypt_and_reads_as_unreadable()
    {
        var id = await CreateAsync(("role", "user"), ("discount", "0"));
        var raw = (await _raw.LoadAsync(id))!;
        // Whoever can write the store copies one attribute's ciphertext over another's.
        await _raw.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { ["discount"] = raw.Attributes["role"] }));

        var loaded = (await _store.LoadAsync(id))!;

        Assert.Equal("user", Text(loaded.Attributes["role"]));
        Assert.False(loaded.Attributes.ContainsKey("discount"));
        Assert.True(DecryptedAttributes.IsUnreadable(loaded, "discount"));
        Assert.False(DecryptedAttributes.IsUnreadable(loaded, "role"));
    }

    [Fact]
    public async Task A_value_under_a_key_ring_this_host_lacks_reads_as_unreadable_and_expecting_absent_replaces_it()
    {
        var id = await CreateAsync(("cart", "pen"));
        var otherRing = new ValueProtectingSessionStore(_raw, new AttributeValueProtector(() => new EphemeralDataProtectionProvider()), encrypt: true);

        var loaded = (await otherRing.LoadAsync(id))!;
        Assert.True(DecryptedAttributes.IsUnreadable(loaded, "cart"));

        // It reads as absent, so an atomic update from absent overwrites it (and nothing else can).
        Assert.Equal("1", Text((await otherRing.UpdateAttributeAsync(id, "cart", null, _ => Bytes("1"), maxAttempts: 2))!));
        Assert.Equal("1", Text((await otherRing.LoadAsync(id))!.Attributes["cart"]));
    }

    [Fact]
    public async Task Without_data_protection_encrypted_values_read_as_unreadable_not_as_ciphertext()
    {
        var id = await CreateAsync(("cart", "pen"));
        var none = new ValueProtectingSessionStore(_raw, new AttributeValueProtector(static () => null), encrypt: false);

        var loaded = (await none.LoadAsync(id))!;

        Assert.Empty(loaded.Attributes);
        Assert.True(DecryptedAttributes.IsUnreadable(loaded, "cart"));
    }

    [Fact]
    public async Task A_session_without_encrypted_values_loads_as_the_same_snapshot()
    {
        var id = SessionId.Create();
        await _raw.CreateAsync(SessionSnapshot.CreateNew(id, DateTimeOffset.UtcNow, Idle, Lifetime, Values(("a", "1"))));
        var off = Layer(encrypt: false);

        var loaded = (await off.LoadAsync(id))!;

        Assert.IsNotType<DecryptedAttributes>(loaded.Attributes);
        Assert.Equal("1", Text(loaded.Attributes["a"]));
    }

    [Fact]
    public async Task Compare_and_set_from_a_loaded_value_takes_one_store_call()
    {
        var id = await CreateAsync(("count", "1"));
        var loaded = (await _store.LoadAsync(id))!;
        _observed.ResetCounts();

        var result = await _store.CompareAndSetAttributeAsync(id, "count", loaded.Attributes["count"], Bytes("2"));

        Assert.Equal(AttributeCasStatus.Succeeded, result.Status);
        Assert.Equal(1, _observed.Calls("cas"));
        Assert.Equal("2", Text((await _store.LoadAsync(id))!.Attributes["count"]));
    }

    [Fact]
    public async Task Compare_and_set_from_an_equal_copy_of_the_value_succeeds_and_a_different_value_mismatches_with_plaintext()
    {
        var id = await CreateAsync(("count", "1"));

        Assert.Equal(AttributeCasStatus.Succeeded, (await _store.CompareAndSetAttributeAsync(id, "count", Bytes("1"), Bytes("2"))).Status);
        var mismatch = await _store.CompareAndSetAttributeAsync(id, "count", Bytes("1"), Bytes("3"));
        var absent = await _store.CompareAndSetAttributeAsync(id, "count", null, Bytes("3"));

        Assert.Equal(AttributeCasStatus.Mismatch, mismatch.Status);
        Assert.Equal("2", Text(mismatch.Current!));
        Assert.Equal(AttributeCasStatus.Mismatch, absent.Status);
        Assert.Equal("2", Text(absent.Current!));
        Assert.Equal("2", Text((await _store.LoadAsync(id))!.Attributes["count"]));
    }

    [Fact]
    public async Task Concurrent_atomic_increments_from_two_hosts_lose_nothing()
    {
        var id = await CreateAsync();
        var hosts = new[] { Layer(encrypt: true), Layer(encrypt: true) };
        const int Writers = 16;
        const int Increments = 25;

        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            var host = hosts[w % hosts.Length];
            for (var i = 0; i < Increments; i++)
            {
                var current = (await host.LoadAsync(id))!.Attributes.GetValueOrDefault("count");
                await host.UpdateAttributeAsync(id, "count", current, v => Bytes(((v is null ? 0 : int.Parse(Text(v), System.Globalization.CultureInfo.InvariantCulture)) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        })));

        Assert.Equal((Writers * Increments).ToString(System.Globalization.CultureInfo.InvariantCulture), Text((await _store.LoadAsync(id))!.Attributes["count"]));
        Assert.True(AttributeValueProtector.IsProtected((await _raw.LoadAsync(id))!.Attributes["count"]));
    }

    [Fact]
    public async Task Find_by_principal_returns_plaintext_values()
    {
        var id = SessionId.Create();
        await _store.CreateAsync(SessionSnapshot.CreateNew(id, DateTimeOffset.UtcNow, Idle, Lifetime, Values(("__cs.ua", "Firefox/1")), principal: "ann"));

        var found = Assert.Single(await _store.FindByPrincipalAsync("ann"));

        Assert.Equal("Firefox/1", Text(found.Attributes["__cs.ua"]));
    }

    [Fact]
    public void A_plain_value_is_never_taken_for_an_encrypted_one()
    {
        Assert.False(AttributeValueProtector.IsProtected(AttributeValueProtector.Marker));
        Assert.False(AttributeValueProtector.IsProtected("{\"json\":1}"u8));
        Assert.False(AttributeValueProtector.IsProtected([0xC5, (byte)'S', (byte)'E', 0x01, 1, 2, 3, 4, 5]));
        var protector = new AttributeValueProtector(() => _keys);
        Assert.True(AttributeValueProtector.IsProtected(protector.Protect("n", [])));
        Assert.True(protector.Protect("n", new byte[1000]).Length <= 1000 + AttributeValueProtector.MaxOverhead);
    }

    private ValueProtectingSessionStore Layer(bool encrypt) => new(_observed, new AttributeValueProtector(() => _keys), encrypt);

    private async Task<string> CreateAsync(params (string Name, string Value)[] attributes)
    {
        var id = SessionId.Create();
        Assert.True(await _store.CreateAsync(SessionSnapshot.CreateNew(id, DateTimeOffset.UtcNow, Idle, Lifetime, Values(attributes))));
        return id;
    }

    private static Dictionary<string, byte[]> Values(params (string Name, string Value)[] attributes)
        => attributes.ToDictionary(a => a.Name, a => Bytes(a.Value), StringComparer.Ordinal);

    private static byte[] Bytes(string value) => Encoding.UTF8.GetBytes(value);

    private static string Text(byte[] value) => Encoding.UTF8.GetString(value);
}
