namespace ClusterSession.Tests;

public sealed class SessionChangesTests
{
    [Fact]
    public void A_name_both_set_and_removed_is_rejected_without_quoting_it()
    {
        var error = Assert.Throws<ArgumentException>(
            () => new SessionChanges(SessionId.Create(), new Dictionary<string, byte[]> { ["secret-name"] = [1] }, ["secret-name"]));

        Assert.Contains("both set and removed", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-name", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+")]
    public void A_malformed_id_is_rejected(string id)
        => Assert.Throws<ArgumentException>(() => new SessionChanges(id));

    [Fact]
    public void A_non_positive_idle_timeout_is_rejected()
        => Assert.Throws<ArgumentOutOfRangeException>(() => new SessionChanges(SessionId.Create(), idleTimeout: TimeSpan.Zero));

    [Fact]
    public void Empty_means_only_an_access()
    {
        var id = SessionId.Create();

        Assert.True(new SessionChanges(id).IsEmpty);
        Assert.False(new SessionChanges(id, removed: ["a"]).IsEmpty);
        Assert.False(new SessionChanges(id, principalChanged: true).IsEmpty);
        Assert.False(new SessionChanges(id, idleTimeout: TimeSpan.FromMinutes(1)).IsEmpty);
    }

    [Fact]
    public void The_principal_is_ignored_unless_it_changed()
        => Assert.Null(new SessionChanges(SessionId.Create(), principal: "alice").Principal);
}
