namespace ClusterSession.Caching;

/// <summary>
/// What <see cref="NearCachedSessionStore"/> goes to when a store puts the layer over itself (as the Redis and PostgreSQL
/// stores do when <c>NearCache.Enabled</c> is set): the store's own uncached load and writes, given as delegates, since the
/// store's public methods go through the layer; creation and the queries go to the store itself.
/// </summary>
/// <example>
/// <code>
/// _layer = new NearCachedSessionStore(
///     new NearCacheBackingStore(this, LoadUncachedAsync, SaveUncachedAsync, DeleteUncachedAsync, ChangeIdUncachedAsync, CompareAndSetUncachedAsync, AdmitUncachedAsync),
///     channel, options.NearCache, options.TouchIntervalFraction, timeProvider, meterFactory);
/// </code>
/// </example>
/// <param name="store">The store: creation, <see cref="ISessionStore.LoadAsync(string, SessionLoadOptions, CancellationToken)"/> with options, the queries and revocation by handle go to it.</param>
/// <param name="load">Loads (and touches) a session without the cache.</param>
/// <param name="save">Saves without the cache and reports the version the save produced.</param>
/// <param name="delete">Deletes without the cache.</param>
/// <param name="changeId">Changes the id without the cache.</param>
/// <param name="compareAndSet">Compare-and-set of one attribute without the cache.</param>
/// <param name="admit">The per-principal cap without the cache.</param>
public sealed class NearCacheBackingStore(
    ISessionStore store,
    Func<string, CancellationToken, ValueTask<SessionSnapshot?>> load,
    Func<SessionChanges, CancellationToken, ValueTask<SessionSaveOutcome>> save,
    Func<string, CancellationToken, ValueTask<bool>> delete,
    Func<string, string, CancellationToken, ValueTask<bool>> changeId,
    Func<string, string, ReadOnlyMemory<byte>?, byte[]?, CancellationToken, ValueTask<AttributeCasResult>> compareAndSet,
    Func<string, string, int, SessionCapPolicy, CancellationToken, ValueTask<SessionAdmission>> admit) : IVersionedSessionStore
{
    /// <inheritdoc />
    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => store.CreateAsync(session, cancellationToken);

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default) => load(id, cancellationToken);

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
        => options == SessionLoadOptions.None ? load(id, cancellationToken) : store.LoadAsync(id, options, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
        => (await save(changes, cancellationToken).ConfigureAwait(false)).Result;

    /// <inheritdoc />
    public ValueTask<SessionSaveOutcome> SaveWithVersionAsync(SessionChanges changes, CancellationToken cancellationToken = default) => save(changes, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => delete(id, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => changeId(oldId, newId, cancellationToken);

    /// <inheritdoc />
    public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
        => compareAndSet(id, name, expected, replacement, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => store.FindByPrincipalAsync(principal, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default) => store.DeleteByHandleAsync(principal, handle, cancellationToken);

    /// <inheritdoc />
    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => store.CountAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
        => admit(id, principal, maxSessions, policy, cancellationToken);
}
