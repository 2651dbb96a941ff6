using ClusterSession.Caching;
using ClusterSession.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

/// <summary>
/// The near-cache layer over a store that is not Redis or PostgreSQL: an in-memory store that announces its writes on an
/// in-process channel, implemented from <see cref="INearCacheChannel"/>'s docs alone, as a third-party store would.
/// </summary>
public sealed class NearCachedSessionStoreTests : IAsyncDisposable
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(20);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly Bus _bus = new();
    private readonly InMemorySessionStore _shared;
    private readonly CountingStore _a;
    private readonly CountingStore _b;
    private readonly NearCachedSessionStore _nodeA;
    private readonly NearCachedSessionStore _nodeB;

    public NearCachedSessionStoreTests()
    {
        _shared = new InMemorySessionStore(timeProvider: _time);
        (_a, _nodeA) = Node("a");
        (_b, _nodeB) = Node("b");
    }

    public async ValueTask DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        await _shared.DisposeAsync();
    }

    [Fact]
    public async Task A_session_read_twice_is_read_from_the_store_once()
    {
        var session = await CreateAsync();

        Assert.NotNull(await _nodeB.LoadAsync(session.Id!));
        Assert.NotNull(await _nodeB.LoadAsync(session.Id!));

        Assert.Equal(1, _b.Loads);
    }

    [Fact]
    public async Task A_write_on_one_node_returns_after_the_other_dropped_its_copy()
    {
        var session = await CreateAsync();
        await _nodeB.LoadAsync(session.Id!);
        Assert.Equal(1, _nodeA.LiveNodeCount);

        Assert.Equal(SessionSaveResult.Saved, await _nodeA.SaveAsync(Change(session.Id!, 2)));

        Assert.Null(_nodeB.PeekCopy(session.Id!));
        Assert.Equal([2], (await _nodeB.LoadAsync(session.Id!))!.Attributes["n"]);
        Assert.Equal(0, _nodeA.UnacknowledgedEnds);
    }

    [Fact]
    public async Task A_nodes_own_save_keeps_its_copy_although_its_announcement_came_first()
    {
        var session = await CreateAsync();
        await _nodeA.LoadAsync(session.Id!);

        await _nodeA.SaveAsync(Change(session.Id!, 3));

        Assert.Equal([3], (await _nodeA.LoadAsync(session.Id!))!.Attributes["n"]);
        Assert.Equal(1, _a.Loads);
    }

    [Fact]
    public async Task An_end_on_one_node_is_refused_on_the_other_when_it_returns()
    {
        var session = await CreateAsync();
        await _nodeB.LoadAsync(session.Id!);

        Assert.True(await _nodeA.DeleteAsync(session.Id!));

        Assert.Null(await _nodeB.LoadAsync(session.Id!));
    }

    [Fact]
    public async Task A_node_that_just_joined_waits_for_the_nodes_already_serving_although_it_has_not_heard_them_yet()
    {
        var session = await CreateAsync();
        await _nodeA.LoadAsync(session.Id!);
        Assert.NotNull(_nodeA.PeekCopy(session.Id!));

        // C starts: its first heartbeat came back, but A's next one is a second away; A hears the channel late.
        var (_, nodeC) = Node("c");
        await using var _ = nodeC;
        Assert.True(nodeC.IsUsable);
        _bus.Hold("a");

        var save = nodeC.SaveAsync(Change(session.Id!, 4)).AsTask();

        // A, listed by the channel as listening, still serves its copy: the write must not have returned.
        Assert.False(save.IsCompleted);
        Assert.NotNull(_nodeA.PeekCopy(session.Id!));
        _bus.Release("a");
        Assert.Equal(SessionSaveResult.Saved, await save);
        Assert.Null(_nodeA.PeekCopy(session.Id!));
        Assert.Equal([4], (await _nodeA.LoadAsync(session.Id!))!.Attributes["n"]);
        Assert.Equal(0, nodeC.UnacknowledgedEnds);
    }

    [Fact]
    public async Task A_write_chooses_whom_to_wait_for_only_after_its_own_announcement_came_back()
    {
        var session = await CreateAsync();

        // A hears the channel late. C starts (its first heartbeat is on its way to A) and reads the session at once.
        _bus.Hold("a");
        var (_, nodeC) = Node("c");
        await using var _ = nodeC;
        await nodeC.LoadAsync(session.Id!);
        Assert.NotNull(nodeC.PeekCopy(session.Id!));
        _bus.Hold("c");

        var save = _nodeA.SaveAsync(Change(session.Id!, 5)).AsTask();

        // B acknowledged already, but A has not heard its own announcement, nor C's heartbeat before it: not returned.
        Assert.False(save.IsCompleted);
        _bus.Release("a");
        Assert.Equal(2, _nodeA.LiveNodeCount);
        Assert.NotNull(nodeC.PeekCopy(session.Id!));
        _bus.Release("c");
        Assert.Equal(SessionSaveResult.Saved, await save);
        Assert.Null(nodeC.PeekCopy(session.Id!));
        Assert.Equal(0, _nodeA.UnacknowledgedEnds);
    }

    [Fact]
    public async Task An_end_found_by_the_write_itself_counts_the_acknowledgements_heard_while_it_ran()
    {
        var session = await CreateAsync();
        await _nodeB.LoadAsync(session.Id!);
        var key = SessionHandle.FromId(session.Id!);

        // As a cap that ends the oldest session in the statement that admits another: the key is known from the result,
        // after B already applied the end and acknowledged it.
        var ended = await _nodeA.EndFoundAsync<bool>(async token =>
        {
            var deleted = await _shared.DeleteAsync(session.Id!, token);
            _bus.Send(l => l.OnInvalidation(key, NearCachedSessionStore.Gone, writer: null));
            return (deleted, [key]);
        });

        Assert.True(ended);
        Assert.Null(_nodeB.PeekCopy(session.Id!));
        Assert.Equal(0, _nodeA.UnacknowledgedEnds);
    }

    [Fact]
    public async Task Nothing_is_served_while_the_channel_is_down()
    {
        var session = await CreateAsync();
        await _nodeB.LoadAsync(session.Id!);

        ((INearCacheListener)_nodeB).OnChannelDown();

        Assert.False(_nodeB.IsUsable);
        Assert.NotNull(await _nodeB.LoadAsync(session.Id!));
        Assert.Equal(2, _b.Loads);
    }

    private (CountingStore Store, NearCachedSessionStore Layer) Node(string name)
    {
        var store = new CountingStore(_shared, _bus, name);
        var layer = new NearCachedSessionStore(store, new BusChannel(_bus, name), new NearCacheOptions { Enabled = true }, 0.1, _time);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        return (store, layer);
    }

    private static SessionChanges Change(string id, byte n) => new(id, new Dictionary<string, byte[]> { ["n"] = [n] });

    private async Task<SessionSnapshot> CreateAsync()
    {
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), Idle, TimeSpan.FromHours(8), new Dictionary<string, byte[]> { ["n"] = [1] });
        Assert.True(await _shared.CreateAsync(session));
        return session;
    }

    /// <summary>The nodes' channels: messages are delivered to every node at once, in order (a held node's when released).</summary>
    private sealed class Bus
    {
        private readonly Dictionary<string, Queue<Action<INearCacheListener>>> _held = [];

        public List<BusChannel> Channels { get; } = [];

        public void Send(Action<INearCacheListener> message)
        {
            foreach (var channel in Channels.ToArray())
            {
                if (_held.TryGetValue(channel.NodeId, out var queue))
                {
                    queue.Enqueue(message);
                }
                else
                {
                    message(channel.Listener!);
                }
            }
        }

        /// <summary>The node hears nothing until <see cref="Release"/>: its subscription runs late.</summary>
        public void Hold(string node) => _held[node] = new();

        public void Release(string node)
        {
            var queue = _held[node];
            _held.Remove(node);
            var listener = Channels.Single(c => c.NodeId == node).Listener!;
            while (queue.TryDequeue(out var message))
            {
                message(listener);
            }
        }
    }

    private sealed class BusChannel(Bus bus, string node) : INearCacheChannel
    {
        public INearCacheListener? Listener { get; private set; }

        public string NodeId => node;

        public string KeyOf(string id) => SessionHandle.FromId(id);

        public void Attach(INearCacheListener listener)
        {
            Listener = listener;
            bus.Channels.Add(this);
            listener.OnSubscribed();
        }

        public Task SendHeartbeatAsync(long number)
        {
            bus.Send(l => l.OnHeartbeat(node, number));
            return Task.CompletedTask;
        }

        public Task AcknowledgeAsync(string key, long version, string? writer)
        {
            foreach (var channel in bus.Channels.Where(c => writer is null || c.NodeId == writer).ToArray())
            {
                channel.Listener!.OnAcknowledgement(key, version, node);
            }

            return Task.CompletedTask;
        }

        public Task<IReadOnlyCollection<string>> ListNodesAsync(CancellationToken cancellationToken)
            => Task.FromResult<IReadOnlyCollection<string>>([.. bus.Channels.Select(c => c.NodeId)]);
    }

    /// <summary>The shared store as one node sees it: counts its loads and announces its writes (before their reply, as Redis may).</summary>
    private sealed class CountingStore(InMemorySessionStore store, Bus bus, string node) : IVersionedSessionStore
    {
        public int Loads { get; private set; }

        public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => store.CreateAsync(session, cancellationToken);

        public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
        {
            Loads++;
            return store.LoadAsync(id, cancellationToken);
        }

        public async ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
            => (await SaveWithVersionAsync(changes, cancellationToken)).Result;

        public async ValueTask<SessionSaveOutcome> SaveWithVersionAsync(SessionChanges changes, CancellationToken cancellationToken = default)
        {
            var result = await store.SaveAsync(changes, cancellationToken);
            var version = (await store.LoadAsync(changes.Id, SessionLoadOptions.NoTouch, cancellationToken))?.Version ?? 0;
            if (result == SessionSaveResult.Saved)
            {
                bus.Send(l => l.OnInvalidation(SessionHandle.FromId(changes.Id), version, node));
            }

            return new(result, version);
        }

        public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
        {
            var deleted = await store.DeleteAsync(id, cancellationToken);
            bus.Send(l => l.OnInvalidation(SessionHandle.FromId(id), NearCachedSessionStore.Gone, node));
            return deleted;
        }

        public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => store.ChangeIdAsync(oldId, newId, cancellationToken);

        public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
            => store.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken);

        public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => store.FindByPrincipalAsync(principal, cancellationToken);

        public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => store.CountAsync(cancellationToken);
    }
}
