using System.Xml.Linq;
using Xunit;

namespace ClusterSession.Testing;

/// <summary>
/// The <see cref="IKeyRingStore"/> contract, inherited once per shared store: what one instance stores, every
/// instance over the same key ring reads back, in order, and concurrent writers lose nothing.
/// </summary>
public abstract class KeyRingStoreConformanceTests : IAsyncLifetime
{
    private readonly List<IKeyRingStore> _stores = [];

    /// <summary>A store instance (as on another server) over the key ring named <paramref name="ring"/>.</summary>
    protected abstract Task<IKeyRingStore> CreateStoreAsync(string ring);

    /// <inheritdoc />
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            switch (store)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync();
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }

    [Fact]
    public async Task An_empty_key_ring_reads_as_no_elements()
    {
        var store = await NewAsync(NewRing());
        Assert.Empty(store.GetAllElements());
    }

    [Fact]
    public async Task Elements_stored_by_one_instance_come_back_in_order_to_another()
    {
        var ring = NewRing();
        var writer = await NewAsync(ring);
        var first = Key(1);
        var second = Key(2);
        writer.StoreElement(first, "key-1");
        writer.StoreElement(second, "key-2");

        var reader = await NewAsync(ring);
        var elements = reader.GetAllElements().ToList();

        Assert.Equal(2, elements.Count);
        Assert.True(XNode.DeepEquals(first, elements[0]), elements[0].ToString());
        Assert.True(XNode.DeepEquals(second, elements[1]), elements[1].ToString());
    }

    [Fact]
    public async Task Key_rings_with_different_names_are_separate()
    {
        var one = await NewAsync(NewRing());
        var other = await NewAsync(NewRing());
        one.StoreElement(Key(1), "key-1");

        Assert.Empty(other.GetAllElements());
        Assert.Single(one.GetAllElements());
    }

    [Fact]
    public async Task Concurrent_writers_on_several_instances_lose_no_element()
    {
        const int Writers = 4, PerWriter = 25;
        var ring = NewRing();
        var stores = await Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => NewAsync(ring)));

        await Task.WhenAll(stores.Select((store, w) => Task.Run(() =>
        {
            for (var i = 0; i < PerWriter; i++)
            {
                store.StoreElement(Key((w * 1000) + i), "key");
            }
        })));

        var ids = stores[0].GetAllElements().Select(e => (int)e.Attribute("n")!).ToList();
        Assert.Equal(Writers * PerWriter, ids.Count);
        Assert.Equal(Writers * PerWriter, ids.Distinct().Count());
    }

    private static string NewRing() => "kr" + Guid.NewGuid().ToString("N")[..10];

    private static XElement Key(int n) => new("key", new XAttribute("n", n), new XElement("descriptor", new XAttribute("secret", "s" + n), "<&> text"));

    private async Task<IKeyRingStore> NewAsync(string ring)
    {
        var store = await CreateStoreAsync(ring);
        lock (_stores)
        {
            _stores.Add(store);
        }

        return store;
    }
}
