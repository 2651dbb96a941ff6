namespace ClusterSession.Redis;

/// <summary>Event ids of the Redis store's log messages, one place so they never collide.</summary>
internal static class RedisLogEvents
{
    public const int KeyspaceEventsConfigured = 4002;
    public const int KeyspaceEventHandlerFailed = 4003;
    public const int TopologyRefresh = 4010;
    public const int TopologyRefreshFailed = 4011;
    public const int EvictionPolicyUnfit = 4012;
    public const int NearCacheSubscribed = 4020;
    public const int NearCacheChannelDown = 4021;
    public const int NearCacheInvalidation = 4022;
    public const int NearCacheUnacknowledgedEnd = 4023;
    public const int LifecycleExpiriesUnavailable = 4030;
    public const int LifecycleEventHandlerFailed = 4031;
}
