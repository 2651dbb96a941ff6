using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ClusterSession.Testing;

/// <summary>
/// The store conformance suite: every store's test project inherits this class once per
/// backend (in-memory, Redis, Redis Cluster, Garnet, PostgreSQL) and gets every test.
/// </summary>
public abstract class SessionStoreConformanceTests : IAsyncLifetime
{
    private ISessionStore? _store;

    /// <summary>The clock of the store under test; tests advance it instead of sleeping.</summary>
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

    /// <summary>The store under test, created fresh (empty, isolated) for each test.</summary>
    protected ISessionStore Store => _store ?? throw new InvalidOperationException("The store is created in InitializeAsync.");

    /// <summary>
    /// Creates an empty store that no other test sees (for a shared server: a unique key prefix
    /// or schema), using <paramref name="time"/> as its clock. Called once per test.
    /// </summary>
    protected abstract Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time);

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

    // The tests themselves are added by the foundation work (issue 3).
}
