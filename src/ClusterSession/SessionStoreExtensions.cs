namespace ClusterSession;

/// <summary>Operations every store gets from the core, built on <see cref="ISessionStore"/>.</summary>
public static class SessionStoreExtensions
{
    /// <summary>The default number of compare-and-set attempts of <see cref="UpdateAttributeAsync"/>.</summary>
    public const int DefaultMaxAttempts = 64;

    /// <summary>
    /// Atomic read-modify-write of one attribute: <paramref name="update"/> gets the current value
    /// (null: absent) and returns the new one (null: remove). On a concurrent change the update
    /// runs again on the newer value, so no concurrent update is lost. <paramref name="update"/>
    /// may run several times and must have no side effects.
    /// </summary>
    /// <param name="store">The store.</param>
    /// <param name="id">The session id.</param>
    /// <param name="name">The attribute name.</param>
    /// <param name="current">The value the caller believes is stored (null: absent), the first guess.</param>
    /// <param name="update">Maps the stored value to the new one.</param>
    /// <param name="maxAttempts">How many compare-and-set attempts before giving up.</param>
    /// <param name="cancellationToken">Cancels the update between attempts.</param>
    /// <returns>The value written (null: removed).</returns>
    /// <exception cref="SessionGoneException">The session no longer exists.</exception>
    /// <exception cref="SessionConflictException">Every attempt met a concurrent change.</exception>
    public static async ValueTask<byte[]?> UpdateAttributeAsync(
        this ISessionStore store,
        string id,
        string name,
        byte[]? current,
        Func<byte[]?, byte[]?> update,
        int maxAttempts = DefaultMaxAttempts,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(update);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);

        for (var attempt = 1; attempt <= maxAttempts; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var replacement = update(current);
            // The cast matters: `null : current.AsMemory()` would type as Memory<byte> and turn null into
            // an empty value, so "expect absent" became "expect empty" and every attempt mismatched.
            var result = await store.CompareAndSetAttributeAsync(
                id, name, current is null ? (ReadOnlyMemory<byte>?)null : current, replacement, cancellationToken).ConfigureAwait(false);
            switch (result.Status)
            {
                case AttributeCasStatus.Succeeded:
                    return replacement;
                case AttributeCasStatus.Gone:
                    throw new SessionGoneException(
                        $"Session {SessionId.ToLogTag(id)} was deleted or expired; start a new session.");
                default:
                    current = result.Current;
                    if (attempt > 2)
                    {
                        // Spread colliding writers apart with exponential backoff and full jitter (capped at
                        // 64 ms); the first retries stay immediate. Without the growth, a crowd of writers
                        // on one attribute keeps colliding until some of them run out of attempts.
                        var ceiling = 1 << Math.Min(attempt - 2, 6);
                        await Task.Delay(Random.Shared.Next(0, ceiling + 1), cancellationToken).ConfigureAwait(false);
                    }

                    break;
            }
        }

        throw new SessionConflictException(
            $"The attribute changed concurrently {maxAttempts} times in a row; retry the request or raise maxAttempts.");
    }
}
