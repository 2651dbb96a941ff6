using ClusterSession.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

public sealed class UpdateAttributeTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly InMemorySessionStore _store;

    public UpdateAttributeTests() => _store = new InMemorySessionStore(timeProvider: _time);

    public void Dispose() => _store.Dispose();

    [Fact]
    public async Task A_wrong_first_guess_retries_on_the_stored_value()
    {
        var id = await CreateAsync(new Dictionary<string, byte[]> { ["n"] = [5] });
        var seen = new List<byte?>();

        var written = await _store.UpdateAttributeAsync(id, "n", current: null, value =>
        {
            seen.Add(value?[0]);
            return [(byte)((value?[0] ?? 0) + 1)];
        });

        Assert.Equal(new byte[] { 6 }, written);
        Assert.Equal(new byte?[] { null, 5 }, seen);
        Assert.Equal(new byte[] { 6 }, (await _store.LoadAsync(id))!.Attributes["n"]);
    }

    [Fact]
    public async Task An_absent_attribute_with_a_null_guess_is_written_at_the_first_attempt()
    {
        var id = await CreateAsync();
        var calls = 0;

        await _store.UpdateAttributeAsync(id, "n", current: null, _ => [(byte)++calls], maxAttempts: 1);

        Assert.Equal(1, calls);
        Assert.Equal(new byte[] { 1 }, (await _store.LoadAsync(id))!.Attributes["n"]);
    }

    [Fact]
    public async Task Returning_null_removes_the_attribute()
    {
        var id = await CreateAsync(new Dictionary<string, byte[]> { ["n"] = [5] });

        Assert.Null(await _store.UpdateAttributeAsync(id, "n", [5], _ => null));

        Assert.Empty((await _store.LoadAsync(id))!.Attributes);
    }

    [Fact]
    public async Task A_deleted_session_throws_session_gone()
    {
        var id = await CreateAsync();
        await _store.DeleteAsync(id);

        await Assert.ThrowsAsync<SessionGoneException>(async () => await _store.UpdateAttributeAsync(id, "n", null, _ => [1]));
    }

    [Fact]
    public async Task Endless_conflicts_throw_session_conflict_after_max_attempts()
    {
        var store = new AlwaysConflictingStore();

        var error = await Assert.ThrowsAsync<SessionConflictException>(
            async () => await store.UpdateAttributeAsync(SessionId.Create(), "n", null, _ => [1], maxAttempts: 5));

        Assert.Equal(5, store.Attempts);
        Assert.Contains("maxAttempts", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Max_attempts_below_one_is_rejected()
        => await Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            async () => await _store.UpdateAttributeAsync(SessionId.Create(), "n", null, _ => null, maxAttempts: 0));

    private async Task<string> CreateAsync(Dictionary<string, byte[]>? attributes = null)
    {
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(1), attributes);
        Assert.True(await _store.CreateAsync(session));
        return session.Id!;
    }

    /// <summary>A store whose attribute changes under every compare-and-set: the only way to force a conflict deterministically.</summary>
    private sealed class AlwaysConflictingStore : ISessionStore
    {
        public int Attempts { get; private set; }

        public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
        {
            Attempts++;
            return ValueTask.FromResult(AttributeCasResult.Mismatch([(byte)Attempts]));
        }

        public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
