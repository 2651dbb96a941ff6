namespace ClusterSession.Redis;

// Kept apart from RedisSessionStore.cs so that synchronous disposal (for containers and `using` without await)
// is one obvious place; the work is DisposeAsync's.
public sealed partial class RedisSessionStore : IDisposable
{
    /// <summary>
    /// Disposes the multiplexer when the store created it, as <see cref="DisposeAsync"/> does; prefer
    /// <see cref="DisposeAsync"/> where the caller can await.
    /// </summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
