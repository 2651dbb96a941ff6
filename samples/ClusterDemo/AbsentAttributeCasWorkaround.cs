using ClusterSession;

namespace ClusterDemo;

/// <summary>
/// WORKAROUND, remove once the core is fixed: <c>SessionStoreExtensions.UpdateAttributeAsync</c> builds
/// its "expected" argument as <c>current is null ? null : current.AsMemory()</c>, whose type is
/// <c>Memory&lt;byte&gt;</c>, so an absent attribute is sent as an empty value instead of null and the
/// first update of an attribute (the first cart item) never succeeds. The demo stores no empty values
/// under compare-and-set, so this decorator reads an empty expected value as "absent".
/// </summary>
internal sealed class AbsentAttributeCasWorkaround(ISessionStore inner) : ISessionStore, IAsyncDisposable
{
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
        => inner.CompareAndSetAttributeAsync(id, name, expected is { Length: 0 } ? null : expected, replacement, cancellationToken);

    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => inner.CreateAsync(session, cancellationToken);

    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default) => inner.LoadAsync(id, cancellationToken);

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default) => inner.SaveAsync(changes, cancellationToken);

    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(id, cancellationToken);

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => inner.ChangeIdAsync(oldId, newId, cancellationToken);

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => inner.FindByPrincipalAsync(principal, cancellationToken);

    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        switch (inner)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }
    }
}
