namespace ClusterSession.Tests;

public sealed class SessionHandleTests
{
    [Fact]
    public void A_handle_is_22_url_safe_characters_the_same_for_one_id_and_different_for_another()
    {
        var id = SessionId.Create();
        var handle = SessionHandle.FromId(id);

        Assert.Equal(22, handle.Length);
        Assert.Matches("^[A-Za-z0-9_-]{22}$", handle);
        Assert.Equal(handle, SessionHandle.FromId(id));
        Assert.NotEqual(handle, SessionHandle.FromId(SessionId.Create()));
        Assert.DoesNotContain(id, handle, StringComparison.Ordinal);
    }

    [Fact]
    public void Matches_accepts_the_handle_of_the_id_only()
    {
        var id = SessionId.Create();

        Assert.True(SessionHandle.Matches(id, SessionHandle.FromId(id)));
        Assert.False(SessionHandle.Matches(id, SessionHandle.FromId(SessionId.Create())));
        Assert.False(SessionHandle.Matches(id, ""));
    }
}
