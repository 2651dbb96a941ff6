namespace ClusterSession.Redis;

/// <summary>Event ids of the Redis store's log messages, one place so they never collide.</summary>
internal static class RedisLogEvents
{
    public const int KeyspaceEventsConfigured = 4002;
    public const int KeyspaceEventHandlerFailed = 4003;
}
