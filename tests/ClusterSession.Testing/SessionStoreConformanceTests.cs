using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ClusterSession.Testing;

/// <summary>
/// The store conformance suite: every store's test project inherits this class once per
/// backend (in-memory, Redis, Redis Cluster, Garnet, PostgreSQL) and gets every test.
/// </summary>
/// <remarks>
/// Assumptions the suite makes about a store under test:
/// <list type="bullet">
/// <item>It takes its clock from the <see cref="FakeTimeProvider"/> given to <see cref="CreateStoreAsync"/>
/// and decides expiry by that clock (a server-side TTL may run on real time as well; the suite's
/// timeouts are minutes to hours long, so real-time TTLs never fire during a test).</item>
/// <item>Its touch throttle (how old the last refresh must be before a load refreshes it again)
/// is at most half the idle timeout. The sliding tests load every quarter of the idle timeout.</item>
/// <item>It validates with <see cref="Limits"/> (<see cref="SessionLimits.Default"/> unless overridden) before it
/// writes: <see cref="SessionLimits.Validate(SessionChanges)"/> on a save, <see cref="SessionLimits.Validate(SessionSnapshot)"/>
/// on a create, name and value on a compare-and-set. The count test only needs a change set that alone is over the limit.</item>
/// <item>It stores times with at least millisecond precision; the clock starts on a whole millisecond.</item>
/// </list>
/// </remarks>
public abstract partial class SessionStoreConformanceTests : IAsyncLifetime
{
    /// <summary>The idle timeout of sessions created by the tests.</summary>
    protected static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);

    /// <summary>The absolute lifetime of sessions created by the tests.</summary>
    protected static readonly TimeSpan AbsoluteLifetime = TimeSpan.FromHours(2);

    private ISessionStore? _store;

    /// <summary>The clock of the store under test; tests advance it instead of sleeping.</summary>
    protected FakeTimeProvider Time { get; } = new(WholeMillisecond(DateTimeOffset.UtcNow));

    /// <summary>The store under test, created fresh (empty, isolated) for each test.</summary>
    protected ISessionStore Store => _store ?? throw new InvalidOperationException("The store is created in InitializeAsync.");

    /// <summary>The limits the store under test enforces. Override when a store is configured with other limits.</summary>
    protected virtual SessionLimits Limits => SessionLimits.Default;

    /// <summary>How many rounds the race tests run. Default 20; a fast store may run more to widen the net.</summary>
    protected virtual int RaceRounds => 20;

    /// <summary>
    /// Creates an empty store that no other test sees (for a shared server: a unique key prefix
    /// or schema), using <paramref name="time"/> as its clock. Called once per test.
    /// </summary>
    protected abstract Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time);

    /// <summary>
    /// Creates a store of the type under test from options whose shared part (<see cref="SessionStoreOptions"/>)
    /// <paramref name="configure"/> sets and whose own part is valid. It must validate the options and must not
    /// connect. The suite disposes it.
    /// </summary>
    protected abstract ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure);

    /// <summary>Releases the store after a test (and, where cheap, deletes its data).</summary>
    protected virtual Task DisposeStoreAsync(ISessionStore store)
    {
        return store switch
        {
            IAsyncDisposable asyncDisposable => asyncDisposable.DisposeAsync().AsTask(),
            IDisposable disposable => Task.Run(disposable.Dispose),
            _ => Task.CompletedTask,
        };
    }

    /// <inheritdoc />
    public async Task InitializeAsync() => _store = await CreateStoreAsync(Time);

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await DisposeStoreAsync(_store);
        }
    }

    // ---- create / load ----

    [Fact]
    public async Task Create_then_load_round_trips_metadata_and_attributes()
    {
        var created = NewSession(principal: "alice", attributes: new() { ["a"] = Bytes("one"), ["b"] = [], ["c"] = [0, 255, 7] });
        Assert.True(await Store.CreateAsync(created));

        var loaded = await Store.LoadAsync(created.Id!);

        Assert.NotNull(loaded);
        Assert.Equal(created.Id, loaded.Id);
        Assert.Equal(created.CreatedAt, loaded.CreatedAt);
        Assert.Equal(created.LastAccessedAt, loaded.LastAccessedAt);
        Assert.Equal(created.IdleTimeout, loaded.IdleTimeout);
        Assert.Equal(created.AbsoluteExpiresAt, loaded.AbsoluteExpiresAt);
        Assert.Equal("alice", loaded.Principal);
        AssertAttributes(created.Attributes, loaded.Attributes);
    }

    [Fact]
    public async Task Create_and_load_an_anonymous_session_without_attributes()
    {
        var created = NewSession();
        Assert.True(await Store.CreateAsync(created));

        var loaded = await Store.LoadAsync(created.Id!);

        Assert.NotNull(loaded);
        Assert.Null(loaded.Principal);
        Assert.Empty(loaded.Attributes);
    }

    [Fact]
    public async Task Load_of_an_unknown_id_returns_null()
    {
        Assert.Null(await Store.LoadAsync(SessionId.Create()));
    }

    [Fact]
    public async Task Create_returns_false_for_a_taken_id_and_writes_nothing()
    {
        var first = NewSession(attributes: new() { ["a"] = Bytes("first") });
        Assert.True(await Store.CreateAsync(first));

        var second = NewSession(id: first.Id, principal: "mallory", attributes: new() { ["a"] = Bytes("second"), ["b"] = Bytes("x") });
        Assert.False(await Store.CreateAsync(second));

        var loaded = await Store.LoadAsync(first.Id!);
        Assert.NotNull(loaded);
        Assert.Null(loaded.Principal);
        AssertAttributes(first.Attributes, loaded.Attributes);
        Assert.Equal(1, await Store.CountAsync());
    }

    // ---- save ----

    [Fact]
    public async Task Save_sets_and_removes_attributes_and_raises_the_version()
    {
        var id = await CreateSessionAsync(attributes: new() { ["keep"] = Bytes("k"), ["drop"] = Bytes("d"), ["change"] = Bytes("old") });
        var before = await LoadExistingAsync(id);

        var result = await Store.SaveAsync(new SessionChanges(id, Values(("change", "new"), ("add", "added")), ["drop"]));

        Assert.Equal(SessionSaveResult.Saved, result);
        var after = await LoadExistingAsync(id);
        AssertAttributes(Values(("keep", "k"), ("change", "new"), ("add", "added")), after.Attributes);
        Assert.True(after.Version > before.Version, $"Version {after.Version} after a save is not greater than {before.Version} before it.");
    }

    [Fact]
    public async Task Removal_deletes_the_attribute()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("1"), ["b"] = Bytes("2") });

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, removed: ["a", "never-existed"])));

        var loaded = await LoadExistingAsync(id);
        Assert.False(loaded.Attributes.ContainsKey("a"));
        AssertAttributes(Values(("b", "2")), loaded.Attributes);
    }

    [Fact]
    public async Task Two_stale_copies_changing_different_attributes_both_land()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("a0"), ["b"] = Bytes("b0"), ["c"] = Bytes("c0") });
        var snapshot = await LoadExistingAsync(id);
        var first = new TrackedSession(snapshot);
        var second = new TrackedSession(snapshot);
        first.Set("a", Bytes("a1"));
        second.Set("b", Bytes("b1"));
        second.Remove("c");

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(first.GetChanges()));
        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(second.GetChanges()));

        var loaded = await LoadExistingAsync(id);
        AssertAttributes(Values(("a", "a1"), ("b", "b1")), loaded.Attributes);
    }

    [Fact]
    public async Task Save_changes_the_idle_timeout()
    {
        var id = await CreateSessionAsync();

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, idleTimeout: TimeSpan.FromMinutes(5))));

        Assert.Equal(TimeSpan.FromMinutes(5), (await LoadExistingAsync(id)).IdleTimeout);
        Time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Save_after_delete_returns_gone_and_recreates_nothing()
    {
        var id = await CreateSessionAsync(principal: "alice", attributes: new() { ["a"] = Bytes("1") });
        var stale = new TrackedSession(await LoadExistingAsync(id));
        await CreateSessionAsync();
        Assert.True(await Store.DeleteAsync(id));
        var count = await Store.CountAsync();

        stale.Set("a", Bytes("2"));
        stale.SetPrincipal("bob");
        var result = await Store.SaveAsync(stale.GetChanges());

        Assert.Equal(SessionSaveResult.Gone, result);
        Assert.Null(await Store.LoadAsync(id));
        Assert.Equal(count, await Store.CountAsync());
        Assert.Empty(await Store.FindByPrincipalAsync("bob"));
        Assert.Empty(await Store.FindByPrincipalAsync("alice"));
    }

    [Fact]
    public async Task Empty_save_after_delete_returns_gone()
    {
        var id = await CreateSessionAsync();
        Assert.True(await Store.DeleteAsync(id));

        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(id)));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Save_after_expiry_returns_gone_and_recreates_nothing()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("1") });
        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        var count = await Store.CountAsync();

        var result = await Store.SaveAsync(new SessionChanges(id, Values(("a", "2"))));

        Assert.Equal(SessionSaveResult.Gone, result);
        Assert.Null(await Store.LoadAsync(id));
        Assert.True(await Store.CountAsync() <= count, "A save after expiry raised the session count.");
    }

    [Fact]
    public async Task Save_to_a_never_created_id_returns_gone_and_creates_nothing()
    {
        var id = SessionId.Create();

        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(id, Values(("a", "1")))));

        Assert.Null(await Store.LoadAsync(id));
        Assert.Equal(0, await Store.CountAsync());
    }

    // ---- expiry ----

    [Fact]
    public async Task Session_expires_after_the_idle_timeout()
    {
        var id = await CreateSessionAsync();

        Time.Advance(IdleTimeout - TimeSpan.FromSeconds(1));
        Assert.NotNull(await Store.LoadAsync(id));

        // The load above may or may not have refreshed (throttle); past a full idle timeout after it, it is gone either way.
        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Loads_slide_the_idle_expiry()
    {
        var id = await CreateSessionAsync();

        // Three idle timeouts in total, loaded every quarter: a throttle of at most half the idle timeout keeps it alive.
        for (var i = 0; i < 12; i++)
        {
            Time.Advance(IdleTimeout / 4);
            Assert.True(await Store.LoadAsync(id) is not null, $"The session expired at load {i + 1} although it was loaded every quarter of its idle timeout.");
        }

        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Loads_without_touch_read_the_session_and_never_slide_its_expiry()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("1") });
        var created = (await Store.LoadAsync(id, SessionLoadOptions.NoTouch))!;

        // Polled every quarter of the idle timeout, as the sliding test loads, but without touching: it ends on time.
        for (var i = 0; i < 3; i++)
        {
            Time.Advance(IdleTimeout / 4);
            var read = await Store.LoadAsync(id, SessionLoadOptions.NoTouch);
            Assert.NotNull(read);
            Assert.Equal(Bytes("1"), read.Attributes["a"]);
            Assert.Equal(created.LastAccessedAt, read.LastAccessedAt);
        }

        Time.Advance((IdleTimeout / 4) - TimeSpan.FromSeconds(1));
        Assert.NotNull(await Store.LoadAsync(id, SessionLoadOptions.NoTouch));
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await Store.LoadAsync(id, SessionLoadOptions.NoTouch));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Load_without_touch_of_an_unknown_id_returns_null()
        => Assert.Null(await Store.LoadAsync(SessionId.Create(), SessionLoadOptions.NoTouch));

    [Fact]
    public async Task Saves_slide_the_idle_expiry()
    {
        var id = await CreateSessionAsync();

        for (var i = 0; i < 4; i++)
        {
            Time.Advance(IdleTimeout * 3 / 4);
            Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, Values(("n", i.ToString(System.Globalization.CultureInfo.InvariantCulture))))));
        }

        Assert.NotNull(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Session_expires_at_the_absolute_lifetime_despite_activity()
    {
        var id = await CreateSessionAsync();
        var steps = (int)(AbsoluteLifetime / (IdleTimeout / 4));

        for (var i = 1; i < steps; i++)
        {
            Time.Advance(IdleTimeout / 4);
            Assert.True(await Store.LoadAsync(id) is not null, $"The session expired at load {i} before its absolute lifetime.");
        }

        Time.Advance(IdleTimeout / 4 + TimeSpan.FromSeconds(1));
        Assert.Null(await Store.LoadAsync(id));
        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(id, Values(("a", "1")))));
        Assert.Null(await Store.LoadAsync(id));
    }

    // ---- atomic update ----

    [Fact]
    public async Task Concurrent_atomic_increments_lose_nothing()
    {
        const int writers = 32;
        var id = await CreateSessionAsync();
        using var start = new ManualResetEventSlim();

        var tasks = Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            await Store.UpdateAttributeAsync(id, "counter", null, value => BitConverter.GetBytes((value is null ? 0 : BitConverter.ToInt32(value)) + 1));
        })).ToArray();
        start.Set();
        await Task.WhenAll(tasks);

        var loaded = await LoadExistingAsync(id);
        Assert.Equal(writers, BitConverter.ToInt32(loaded.Attributes["counter"]));
    }

    [Fact]
    public async Task Compare_and_set_mismatch_returns_the_current_value()
    {
        var id = await CreateSessionAsync(attributes: new() { ["x"] = Bytes("1") });

        var wrongGuess = await Store.CompareAndSetAttributeAsync(id, "x", Bytes("2"), Bytes("3"));
        Assert.Equal(AttributeCasStatus.Mismatch, wrongGuess.Status);
        Assert.Equal(Bytes("1"), wrongGuess.Current);

        var absentGuess = await Store.CompareAndSetAttributeAsync(id, "x", null, Bytes("3"));
        Assert.Equal(AttributeCasStatus.Mismatch, absentGuess.Status);
        Assert.Equal(Bytes("1"), absentGuess.Current);

        var missing = await Store.CompareAndSetAttributeAsync(id, "y", Bytes("1"), Bytes("3"));
        Assert.Equal(AttributeCasStatus.Mismatch, missing.Status);
        Assert.Null(missing.Current);

        AssertAttributes(Values(("x", "1")), (await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Compare_and_set_tells_an_empty_value_from_an_absent_attribute()
    {
        var id = await CreateSessionAsync(attributes: new() { ["empty"] = [] });

        var emptyExpectedAbsent = await Store.CompareAndSetAttributeAsync(id, "empty", null, Bytes("x"));
        Assert.Equal(AttributeCasStatus.Mismatch, emptyExpectedAbsent.Status);
        Assert.NotNull(emptyExpectedAbsent.Current);
        Assert.Empty(emptyExpectedAbsent.Current);

        var absentExpectedEmpty = await Store.CompareAndSetAttributeAsync(id, "absent", ReadOnlyMemory<byte>.Empty, Bytes("x"));
        Assert.Equal(AttributeCasStatus.Mismatch, absentExpectedEmpty.Status);
        Assert.Null(absentExpectedEmpty.Current);

        Assert.Equal(AttributeCasStatus.Succeeded, (await Store.CompareAndSetAttributeAsync(id, "empty", ReadOnlyMemory<byte>.Empty, Bytes("x"))).Status);
        AssertAttributes(Values(("empty", "x")), (await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Atomic_update_of_an_absent_attribute_with_no_guess_writes_it()
    {
        var id = await CreateSessionAsync();

        Assert.Equal(Bytes("1"), await Store.UpdateAttributeAsync(id, "new", null, _ => Bytes("1"), maxAttempts: 1));

        AssertAttributes(Values(("new", "1")), (await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Compare_and_set_adds_replaces_and_removes()
    {
        var id = await CreateSessionAsync();

        Assert.Equal(AttributeCasStatus.Succeeded, (await Store.CompareAndSetAttributeAsync(id, "x", null, Bytes("1"))).Status);
        AssertAttributes(Values(("x", "1")), (await LoadExistingAsync(id)).Attributes);

        Assert.Equal(AttributeCasStatus.Succeeded, (await Store.CompareAndSetAttributeAsync(id, "x", Bytes("1"), Bytes("2"))).Status);
        AssertAttributes(Values(("x", "2")), (await LoadExistingAsync(id)).Attributes);

        Assert.Equal(AttributeCasStatus.Succeeded, (await Store.CompareAndSetAttributeAsync(id, "x", Bytes("2"), null)).Status);
        Assert.Empty((await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Compare_and_set_on_a_deleted_session_returns_gone_and_recreates_nothing()
    {
        var id = await CreateSessionAsync();
        Assert.True(await Store.DeleteAsync(id));

        Assert.Equal(AttributeCasStatus.Gone, (await Store.CompareAndSetAttributeAsync(id, "x", null, Bytes("1"))).Status);
        Assert.Null(await Store.LoadAsync(id));
        await Assert.ThrowsAsync<SessionGoneException>(async () => await Store.UpdateAttributeAsync(id, "x", null, _ => Bytes("1")));
        Assert.Null(await Store.LoadAsync(id));
    }

    [Fact]
    public async Task Compare_and_set_on_an_expired_session_returns_gone()
    {
        var id = await CreateSessionAsync(attributes: new() { ["x"] = Bytes("1") });
        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));

        Assert.Equal(AttributeCasStatus.Gone, (await Store.CompareAndSetAttributeAsync(id, "x", Bytes("1"), Bytes("2"))).Status);
        Assert.Null(await Store.LoadAsync(id));
    }

    // ---- delete ----

    [Fact]
    public async Task Delete_is_idempotent()
    {
        var id = await CreateSessionAsync();
        var other = await CreateSessionAsync();

        Assert.True(await Store.DeleteAsync(id));
        Assert.False(await Store.DeleteAsync(id));
        Assert.False(await Store.DeleteAsync(SessionId.Create()));

        Assert.Null(await Store.LoadAsync(id));
        Assert.NotNull(await Store.LoadAsync(other));
        Assert.Equal(1, await Store.CountAsync());
    }

    // ---- change id ----

    [Fact]
    public async Task Change_id_moves_attributes_principal_and_metadata_and_the_old_id_is_absent()
    {
        var oldId = await CreateSessionAsync(principal: "alice", attributes: new() { ["a"] = Bytes("1"), ["b"] = Bytes("2") });
        Time.Advance(TimeSpan.FromMinutes(1));
        var before = await LoadExistingAsync(oldId);
        var newId = SessionId.Create();

        Assert.True(await Store.ChangeIdAsync(oldId, newId));

        Assert.Null(await Store.LoadAsync(oldId));
        var moved = await LoadExistingAsync(newId);
        Assert.Equal(newId, moved.Id);
        Assert.Equal("alice", moved.Principal);
        Assert.Equal(before.CreatedAt, moved.CreatedAt);
        Assert.Equal(before.IdleTimeout, moved.IdleTimeout);
        Assert.Equal(before.AbsoluteExpiresAt, moved.AbsoluteExpiresAt);
        AssertAttributes(before.Attributes, moved.Attributes);
        Assert.Equal(1, await Store.CountAsync());
        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(oldId, Values(("a", "stale")))));
        Assert.Null(await Store.LoadAsync(oldId));
        AssertAttributes(before.Attributes, (await LoadExistingAsync(newId)).Attributes);
    }

    [Fact]
    public async Task Change_id_keeps_the_absolute_expiry()
    {
        var oldId = await CreateSessionAsync();
        var newId = SessionId.Create();
        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(oldId, idleTimeout: AbsoluteLifetime * 2)));
        Time.Advance(AbsoluteLifetime - TimeSpan.FromMinutes(1));
        Assert.True(await Store.ChangeIdAsync(oldId, newId));

        Time.Advance(TimeSpan.FromMinutes(2));

        Assert.Null(await Store.LoadAsync(newId));
    }

    [Fact]
    public async Task Change_id_of_a_missing_session_returns_false()
    {
        var newId = SessionId.Create();

        Assert.False(await Store.ChangeIdAsync(SessionId.Create(), newId));

        Assert.Null(await Store.LoadAsync(newId));
    }

    [Fact]
    public async Task Change_id_of_an_expired_session_returns_false()
    {
        var oldId = await CreateSessionAsync();
        var newId = SessionId.Create();
        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));

        Assert.False(await Store.ChangeIdAsync(oldId, newId));

        Assert.Null(await Store.LoadAsync(newId));
    }

    [Fact]
    public async Task Change_id_to_a_taken_id_returns_false_and_changes_nothing()
    {
        var oldId = await CreateSessionAsync(attributes: new() { ["who"] = Bytes("old") });
        var takenId = await CreateSessionAsync(attributes: new() { ["who"] = Bytes("taken") });

        Assert.False(await Store.ChangeIdAsync(oldId, takenId));

        AssertAttributes(Values(("who", "old")), (await LoadExistingAsync(oldId)).Attributes);
        AssertAttributes(Values(("who", "taken")), (await LoadExistingAsync(takenId)).Attributes);
    }

    [Fact]
    public async Task A_save_racing_change_id_is_moved_or_gone_never_lost()
    {
        for (var round = 0; round < RaceRounds; round++)
        {
            var oldId = await CreateSessionAsync(attributes: new() { ["base"] = Bytes("b") });
            var stale = new TrackedSession(await LoadExistingAsync(oldId));
            stale.Set("raced", Bytes($"round {round}"));
            var changes = stale.GetChanges();
            var newId = SessionId.Create();
            using var start = new ManualResetEventSlim();

            var save = Task.Run(async () =>
            {
                start.Wait();
                return await Store.SaveAsync(changes);
            });
            var move = Task.Run(async () =>
            {
                start.Wait();
                return await Store.ChangeIdAsync(oldId, newId);
            });
            start.Set();
            var saveResult = await save;

            Assert.True(await move, $"Round {round}: ChangeIdAsync failed.");
            Assert.Null(await Store.LoadAsync(oldId));
            var moved = await LoadExistingAsync(newId);
            Assert.Equal(Bytes("b"), moved.Attributes["base"]);
            if (saveResult == SessionSaveResult.Saved)
            {
                Assert.True(
                    moved.Attributes.TryGetValue("raced", out var value) && value.AsSpan().SequenceEqual(Bytes($"round {round}")),
                    $"Round {round}: the save returned Saved but its change is not under the new id.");
            }
        }
    }

    // ---- principal index ----

    [Fact]
    public async Task Find_by_principal_sees_a_session_created_with_a_principal()
    {
        var id = await CreateSessionAsync(principal: "alice");
        var other = await CreateSessionAsync(principal: "alice");
        await CreateSessionAsync(principal: "bob");
        await CreateSessionAsync();

        var found = await Store.FindByPrincipalAsync("alice");

        Assert.Equal(Handles(id, other), found.Select(s => s.Handle).Order(StringComparer.Ordinal));
        Assert.All(found, s => Assert.Equal("alice", s.Principal));
        Assert.All(found, s => Assert.Null(s.Id));
        Assert.Empty(await Store.FindByPrincipalAsync("nobody"));
    }

    [Fact]
    public async Task Delete_by_handle_ends_the_principals_session_and_no_other()
    {
        var id = await CreateSessionAsync(principal: "alice");
        var other = await CreateSessionAsync(principal: "alice");
        var bobs = await CreateSessionAsync(principal: "bob");

        Assert.False(await Store.DeleteByHandleAsync("alice", SessionHandle.FromId(bobs)));
        Assert.False(await Store.DeleteByHandleAsync("alice", SessionHandle.FromId(SessionId.Create())));
        Assert.True(await Store.DeleteByHandleAsync("alice", SessionHandle.FromId(id)));
        Assert.False(await Store.DeleteByHandleAsync("alice", SessionHandle.FromId(id)));

        Assert.Null(await Store.LoadAsync(id));
        Assert.NotNull(await Store.LoadAsync(other));
        Assert.NotNull(await Store.LoadAsync(bobs));
        Assert.Equal(SessionHandle.FromId(other), Assert.Single(await Store.FindByPrincipalAsync("alice")).Handle);
        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(id, Values(("a", "1")))));
    }

    [Fact]
    public async Task Find_by_principal_follows_a_principal_set_change_and_removal()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("1") });

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, principalChanged: true, principal: "alice")));
        var found = Assert.Single(await Store.FindByPrincipalAsync("alice"));
        Assert.Equal(SessionHandle.FromId(id), found.Handle);
        AssertAttributes(Values(("a", "1")), found.Attributes);

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, principalChanged: true, principal: "bob")));
        Assert.Empty(await Store.FindByPrincipalAsync("alice"));
        Assert.Equal(SessionHandle.FromId(id), Assert.Single(await Store.FindByPrincipalAsync("bob")).Handle);
        Assert.Equal("bob", (await LoadExistingAsync(id)).Principal);

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, principalChanged: true, principal: null)));
        Assert.Empty(await Store.FindByPrincipalAsync("bob"));
        Assert.Null((await LoadExistingAsync(id)).Principal);
    }

    [Fact]
    public async Task Find_by_principal_omits_expired_and_deleted_sessions()
    {
        var expiring = await CreateSessionAsync(principal: "alice");
        Time.Advance(IdleTimeout / 2);
        var deleted = await CreateSessionAsync(principal: "alice");
        var live = await CreateSessionAsync(principal: "alice");
        Assert.True(await Store.DeleteAsync(deleted));

        Time.Advance(IdleTimeout / 2 + TimeSpan.FromSeconds(1));

        Assert.Equal(SessionHandle.FromId(live), Assert.Single(await Store.FindByPrincipalAsync("alice")).Handle);
        Assert.Null(await Store.LoadAsync(expiring));
    }

    [Fact]
    public async Task Find_by_principal_follows_an_id_change()
    {
        var oldId = await CreateSessionAsync(principal: "alice");
        var newId = SessionId.Create();

        Assert.True(await Store.ChangeIdAsync(oldId, newId));

        var found = Assert.Single(await Store.FindByPrincipalAsync("alice"));
        Assert.Equal(SessionHandle.FromId(newId), found.Handle);
        Assert.Equal("alice", found.Principal);
    }

    // ---- limits ----

    [Fact]
    public async Task Save_of_an_oversized_value_throws_a_clear_limit_error_and_writes_nothing()
    {
        var id = await CreateSessionAsync(attributes: new() { ["a"] = Bytes("1") });
        var changes = new SessionChanges(id, new Dictionary<string, byte[]> { ["a"] = Bytes("2"), ["big"] = new byte[Limits.MaxValueBytes + 1] });

        var error = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(changes));

        Assert.DoesNotContain("big", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(SessionLimits.MaxValueBytes), error.Message, StringComparison.Ordinal);
        AssertAttributes(Values(("a", "1")), (await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Save_with_a_bad_attribute_name_throws_a_clear_limit_error()
    {
        var id = await CreateSessionAsync();

        var empty = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, Values(("", "1")))));
        Assert.Contains("empty", empty.Message, StringComparison.Ordinal);

        var tooLong = new string('n', Limits.MaxNameLength + 1);
        var longError = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, Values((tooLong, "1")))));
        Assert.Contains(nameof(SessionLimits.MaxNameLength), longError.Message, StringComparison.Ordinal);

        await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, Values(("bad\nname", "1")))));
        Assert.Empty((await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Save_over_the_attribute_count_throws_a_clear_limit_error()
    {
        var id = await CreateSessionAsync();
        var tooMany = Enumerable.Range(0, Limits.MaxAttributes + 1).ToDictionary(i => "k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => new byte[] { 1 });

        var error = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, tooMany)));

        Assert.Contains(nameof(SessionLimits.MaxAttributes), error.Message, StringComparison.Ordinal);
        Assert.Empty((await LoadExistingAsync(id)).Attributes);
    }

    [Fact]
    public async Task Create_with_an_oversized_value_or_bad_name_throws_a_clear_limit_error_and_creates_nothing()
    {
        var oversized = NewSession(attributes: new() { ["big"] = new byte[Limits.MaxValueBytes + 1] });
        var error = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.CreateAsync(oversized));
        Assert.Contains(nameof(SessionLimits.MaxValueBytes), error.Message, StringComparison.Ordinal);
        Assert.Null(await Store.LoadAsync(oversized.Id!));

        var badName = NewSession(attributes: new() { [""] = Bytes("1") });
        await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.CreateAsync(badName));
        Assert.Null(await Store.LoadAsync(badName.Id!));

        Assert.Equal(0, await Store.CountAsync());
    }

    [Fact]
    public async Task Compare_and_set_of_an_oversized_value_throws_a_clear_limit_error()
    {
        var id = await CreateSessionAsync();

        var error = await Assert.ThrowsAsync<SessionLimitExceededException>(
            async () => await Store.CompareAndSetAttributeAsync(id, "big", null, new byte[Limits.MaxValueBytes + 1]));

        Assert.Contains(nameof(SessionLimits.MaxValueBytes), error.Message, StringComparison.Ordinal);
        Assert.Empty((await LoadExistingAsync(id)).Attributes);
    }

    // ---- ids: the same checks on every operation ----

    /// <summary>Ids that are not ids: empty, short, one too long, a foreign character, oversized.</summary>
    public static TheoryData<string> MalformedIds => new()
    {
        string.Empty,
        "short",
        new string('A', SessionId.Length + 1),
        new string('A', SessionId.Length - 1) + "+",
        new string('A', SessionId.Length - 1) + "\n",
        new string('x', 100_000),
    };

    [Theory]
    [MemberData(nameof(MalformedIds))]
    public async Task Every_operation_rejects_a_malformed_id_before_the_server_and_never_quotes_it(string id)
    {
        var live = await CreateSessionAsync(attributes: Values(("a", "1")));
        var calls = new Func<Task>[]
        {
            async () => await Store.LoadAsync(id),
            async () => await Store.DeleteAsync(id),
            async () => await Store.ChangeIdAsync(id, SessionId.Create()),
            async () => await Store.ChangeIdAsync(live, id),
            async () => await Store.CompareAndSetAttributeAsync(id, "a", null, Bytes("1")),
            async () => await Store.CreateAsync(new SessionSnapshot(id, Time.GetUtcNow(), Time.GetUtcNow(), IdleTimeout, Time.GetUtcNow() + AbsoluteLifetime, null, 0, Values())),
        };

        foreach (var call in calls)
        {
            var error = await Assert.ThrowsAnyAsync<ArgumentException>(call);
            if (id.Length > 0)
            {
                Assert.DoesNotContain(id, error.Message, StringComparison.Ordinal);
            }
        }

        Assert.Throws<ArgumentException>(() => new SessionChanges(id));
        AssertAttributes(Values(("a", "1")), (await LoadExistingAsync(live)).Attributes);
        Assert.Equal(1, await Store.CountAsync());
    }

    [Fact]
    public async Task Change_id_to_the_same_id_returns_false_and_leaves_the_session_as_it_is()
    {
        var id = await CreateSessionAsync(principal: "alice", attributes: Values(("a", "1")));
        var before = await LoadExistingAsync(id);

        Assert.False(await Store.ChangeIdAsync(id, id));

        var after = await LoadExistingAsync(id);
        Assert.Equal(before.Version, after.Version);
        Assert.Equal("alice", after.Principal);
        AssertAttributes(Values(("a", "1")), after.Attributes);
        Assert.Equal(SessionHandle.FromId(id), Assert.Single(await Store.FindByPrincipalAsync("alice")).Handle);
        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(id, Values(("b", "2")))));
    }

    [Fact]
    public async Task Change_id_to_the_same_id_of_a_missing_session_returns_false()
    {
        var id = SessionId.Create();

        Assert.False(await Store.ChangeIdAsync(id, id));
        Assert.Null(await Store.LoadAsync(id));
    }

    // ---- options: one validator, one message format ----

    [Theory]
    [InlineData(-0.1)]
    [InlineData(0.6)]
    [InlineData(double.NaN)]
    public void An_out_of_range_touch_fraction_is_rejected_naming_the_option_in_the_shared_format(double fraction)
    {
        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(
            () => CreateStoreWithOptions(o => o.TouchIntervalFraction = fraction));

        var failure = Assert.Single(error.Failures);
        Assert.Matches(@"^\w+SessionStoreOptions\.TouchIntervalFraction is \S+: use a value from 0 .* to 0\.5 ", failure);
        Assert.EndsWith("SessionStoreOptions", error.OptionsName, StringComparison.Ordinal);
    }

    [Fact]
    public void Null_limits_are_rejected_naming_the_option_in_the_shared_format()
    {
        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => CreateStoreWithOptions(o => o.Limits = null!));

        Assert.Matches(@"^\w+SessionStoreOptions\.Limits is null: ", Assert.Single(error.Failures));
    }

    [Fact]
    public async Task Valid_shared_options_at_their_bounds_create_a_store()
    {
        foreach (var fraction in new[] { 0, 0.5 })
        {
            var store = CreateStoreWithOptions(o =>
            {
                o.TouchIntervalFraction = fraction;
                o.Limits = new SessionLimits { MaxAttributes = 1 };
            });
            await DisposeOptionsStoreAsync(store);
        }
    }

    [Fact]
    public async Task Limit_errors_never_quote_an_attribute_name_or_value()
    {
        const string secretName = "secret-attribute-name";
        var secretValue = Bytes("secret-attribute-value");
        var id = await CreateSessionAsync();
        var oversized = new byte[Limits.MaxValueBytes + 1];
        secretValue.CopyTo(oversized, 0);
        var longName = secretName + new string('n', Limits.MaxNameLength);
        var tooMany = Enumerable.Range(0, Limits.MaxAttributes + 1).ToDictionary(i => secretName + i.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => secretValue);

        var errors = new List<Exception>
        {
            await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { [secretName] = oversized }))),
            await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, Values((longName, "1"))))),
            await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, tooMany))),
            await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.CompareAndSetAttributeAsync(id, secretName, null, oversized)),
            await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.CreateAsync(NewSession(attributes: new() { [secretName] = oversized }))),
        };

        Logging.Secrets.AssertAbsent(errors.Select(Logging.Secrets.TextOf), id, secretName, "secret-attribute-value");
    }

    [Fact]
    public async Task A_store_side_count_limit_is_the_same_limit_error_as_the_core_one()
    {
        // Within the limit on its own, over it with what is stored: only the store can tell.
        var id = await CreateSessionAsync(attributes: Enumerable.Range(0, Limits.MaxAttributes).ToDictionary(i => "k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => new byte[] { 1 }));
        var expected = Assert.Throws<SessionLimitExceededException>(() => Limits.ValidateCount(Limits.MaxAttributes + 1));

        var onSave = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.SaveAsync(new SessionChanges(id, Values(("one-more", "1")))));
        var onCas = await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await Store.CompareAndSetAttributeAsync(id, "one-more", null, [1]));

        Assert.Equal(expected.Message, onSave.Message);
        Assert.Equal(expected.Message, onCas.Message);
        Assert.Equal(Limits.MaxAttributes, (await LoadExistingAsync(id)).Attributes.Count);
    }

    // ---- count ----

    [Fact]
    public async Task Count_is_zero_for_an_empty_store()
    {
        Assert.Equal(0, await Store.CountAsync());
    }

    [Fact]
    public async Task Ten_thousand_sessions_count_correctly()
    {
        const int sessions = 10_000;
        var ids = new ConcurrentBag<string>();

        await Parallel.ForEachAsync(
            Enumerable.Range(0, sessions),
            new ParallelOptions { MaxDegreeOfParallelism = 64 },
            async (i, ct) =>
            {
                var session = NewSession(attributes: new() { ["i"] = BitConverter.GetBytes(i) });
                Assert.True(await Store.CreateAsync(session, ct));
                ids.Add(session.Id!);
            });

        Assert.Equal(sessions, await Store.CountAsync());
        Assert.Equal(sessions, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.True(await Store.DeleteAsync(ids.First()));
        Assert.Equal(sessions - 1, await Store.CountAsync());
    }

    // ---- helpers ----

    private static Task DisposeOptionsStoreAsync(ISessionStore store) => store switch
    {
        IAsyncDisposable asyncDisposable => asyncDisposable.DisposeAsync().AsTask(),
        IDisposable disposable => Task.Run(disposable.Dispose),
        _ => Task.CompletedTask,
    };

    /// <summary>A new session at the current fake time with the suite's timeouts.</summary>
    protected SessionSnapshot NewSession(string? id = null, string? principal = null, Dictionary<string, byte[]>? attributes = null)
        => SessionSnapshot.CreateNew(
            id ?? SessionId.Create(),
            Time.GetUtcNow(),
            IdleTimeout,
            AbsoluteLifetime,
            new Dictionary<string, byte[]>(attributes ?? [], StringComparer.Ordinal),
            principal);

    /// <summary>The handles of <paramref name="ids"/>, in ordinal order.</summary>
    protected static IEnumerable<string> Handles(params string[] ids) => ids.Select(SessionHandle.FromId).Order(StringComparer.Ordinal);

    /// <summary>Creates a session in the store and returns its id.</summary>
    protected async Task<string> CreateSessionAsync(string? principal = null, Dictionary<string, byte[]>? attributes = null)
    {
        var session = NewSession(principal: principal, attributes: attributes);
        Assert.True(await Store.CreateAsync(session), "CreateAsync returned false for a fresh id.");
        return session.Id!;
    }

    /// <summary>Loads a session that must exist.</summary>
    protected async Task<SessionSnapshot> LoadExistingAsync(string id)
        => await Store.LoadAsync(id) ?? throw new Xunit.Sdk.XunitException("The session is missing from the store.");

    /// <summary>UTF-8 bytes of a string.</summary>
    protected static byte[] Bytes(string value) => Encoding.UTF8.GetBytes(value);

    /// <summary>A name-to-value map of UTF-8 string values.</summary>
    protected static Dictionary<string, byte[]> Values(params (string Name, string Value)[] values)
        => values.ToDictionary(v => v.Name, v => Bytes(v.Value), StringComparer.Ordinal);

    /// <summary>Asserts that two attribute maps hold the same names and bytes.</summary>
    protected static void AssertAttributes(IReadOnlyDictionary<string, byte[]> expected, IReadOnlyDictionary<string, byte[]> actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, value) in expected)
        {
            Assert.True(value.AsSpan().SequenceEqual(actual[name]), $"Attribute '{name}' differs.");
        }
    }

    private static DateTimeOffset WholeMillisecond(DateTimeOffset time)
        => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerMillisecond), TimeSpan.Zero);
}
