using System.Collections.Concurrent;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// Wraps a real store to count its calls by operation and, when <see cref="IsDown"/> is set, to fail every
/// call as an unreachable store does. Not a mock: every call that is not failed reaches the real store.
/// </summary>
internal sealed class ObservedStore : ISessionStore
{
    private readonly ISessionStore _inner;
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);

    public ObservedStore(ISessionStore inner) => _inner = inner;

    public ISessionStore Inner => _inner;

    public volatile bool IsDown;

    public int Calls(string operation) => _calls.TryGetValue(operation, out var n) ? n : 0;

    public int TotalCalls => _calls.Values.Sum();

    public int Writes => Calls("create") + Calls("save") + Calls("delete") + Calls("change_id") + Calls("cas");

    public void ResetCounts() => _calls.Clear();

    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
        => Enter("create") ? _inner.CreateAsync(session, cancellationToken) : throw Down();

    /// <summary>While set, loads wait for it to complete: a store that stopped answering.</summary>
    public TaskCompletionSource? HangLoads { get; set; }

    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        if (!Enter("load"))
        {
            throw Down();
        }

        return HangLoads is { } hang ? HungLoadAsync(hang.Task, id, cancellationToken)
            : SlowCalls > TimeSpan.Zero ? SlowAsync(static (store, id, ct) => store.LoadAsync(id, ct), id, cancellationToken)
            : _inner.LoadAsync(id, cancellationToken);
    }

    /// <summary>
    /// While above zero, loads and compare-and-sets wait this long (ending early when their token is cancelled) before the
    /// real store answers: a store that is slow but answers, as one in the middle of a failover is.
    /// </summary>
    public TimeSpan SlowCalls { get; set; }

    private async ValueTask<TResult> SlowAsync<TState, TResult>(Func<ISessionStore, TState, CancellationToken, ValueTask<TResult>> call, TState state, CancellationToken cancellationToken)
    {
        await Task.Delay(SlowCalls, cancellationToken);
        return await call(_inner, state, cancellationToken);
    }

    /// <summary>A load with options counts as "load" without them, and as "load_no_touch" with <see cref="SessionLoadOptions.NoTouch"/>.</summary>
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
    {
        if (options == SessionLoadOptions.None)
        {
            return LoadAsync(id, cancellationToken);
        }

        return Enter("load_no_touch") ? _inner.LoadAsync(id, options, cancellationToken) : throw Down();
    }

    /// <summary>How many hung loads ended because their token was cancelled (as a real store's call is at the deadline).</summary>
    public int CancelledHangs => Volatile.Read(ref _cancelledHangs);

    private int _cancelledHangs;

    private async ValueTask<SessionSnapshot?> HungLoadAsync(Task hang, string id, CancellationToken cancellationToken)
    {
        try
        {
            await hang.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _cancelledHangs);
            throw;
        }

        return await _inner.LoadAsync(id, cancellationToken);
    }

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
        => Enter("save") ? _inner.SaveAsync(changes, cancellationToken) : throw Down();

    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
        => Enter("delete") ? _inner.DeleteAsync(id, cancellationToken) : throw Down();

    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default)
        => Enter("delete") ? _inner.DeleteByHandleAsync(principal, handle, cancellationToken) : throw Down();

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
        => Enter("change_id") ? _inner.ChangeIdAsync(oldId, newId, cancellationToken) : throw Down();

    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
        => !Enter("cas") ? throw Down()
            : SlowCalls > TimeSpan.Zero ? SlowAsync(static (store, a, ct) => store.CompareAndSetAttributeAsync(a.id, a.name, a.expected, a.replacement, ct), (id, name, expected, replacement), cancellationToken)
            : _inner.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken);

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
        => Enter("find") ? _inner.FindByPrincipalAsync(principal, cancellationToken) : throw Down();

    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
        => Enter("admit") ? _inner.AdmitAsync(id, principal, maxSessions, policy, cancellationToken) : throw Down();

    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default)
        => Enter("count") ? _inner.CountAsync(cancellationToken) : throw Down();

    private bool Enter(string operation)
    {
        _calls.AddOrUpdate(operation, 1, static (_, n) => n + 1);
        return !IsDown;
    }

    private static SessionStoreUnavailableException Down() => new("Test: the store is down.");
}
