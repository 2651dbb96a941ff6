namespace ClusterSession.Tests;

public sealed class SessionStoreHealthTests
{
    [Fact]
    public void Each_status_keeps_its_description_and_degraded_or_unhealthy_must_say_why()
    {
        Assert.Equal(SessionStoreHealthStatus.Healthy, SessionStoreHealth.Healthy().Status);
        Assert.Null(SessionStoreHealth.Healthy().Description);
        Assert.Equal("1 of 2 replicas", SessionStoreHealth.Degraded("1 of 2 replicas").Description);
        Assert.Equal(SessionStoreHealthStatus.Unhealthy, SessionStoreHealth.Unhealthy("read-only").Status);
        Assert.Throws<ArgumentException>(() => SessionStoreHealth.Degraded(" "));
        Assert.Throws<ArgumentException>(() => SessionStoreHealth.Unhealthy(""));
    }

    [Fact]
    public void An_outage_carries_a_retry_hint_only_when_one_is_known()
    {
        Assert.Null(new SessionStoreUnavailableException("down").RetryAfter);
        Assert.Equal(TimeSpan.FromSeconds(3), new SessionStoreUnavailableException("down") { RetryAfter = TimeSpan.FromSeconds(3) }.RetryAfter);
    }
}
