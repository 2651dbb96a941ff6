using System.Text;

namespace ClusterSession.Tests;

public sealed class TrackedSessionTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(20);

    [Fact]
    public void Reads_see_the_snapshot_overlaid_with_the_requests_changes()
    {
        var session = Stored(("a", "1"), ("b", "2"));

        session.Set("a", Bytes("changed"));
        session.Set("c", Bytes("3"));
        session.Remove("b");

        Assert.True(session.TryGetValue("a", out var a));
        Assert.Equal("changed", Encoding.UTF8.GetString(a));
        Assert.False(session.TryGetValue("b", out _));
        Assert.True(session.TryGetValue("c", out _));
        Assert.Equal(["a", "c"], session.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2, session.Count);
        Assert.True(session.HasChanges);
    }

    [Fact]
    public void Changes_carry_only_what_changed()
    {
        var session = Stored(("keep", "k"), ("drop", "d"));

        session.Set("new", Bytes("n"));
        session.Remove("drop");
        session.Remove("never-existed");

        var changes = session.GetChanges();
        Assert.Equal(session.Id, changes.Id);
        Assert.Equal(["new"], changes.Set.Keys);
        Assert.Equal(["drop"], changes.Removed);
        Assert.False(changes.PrincipalChanged);
        Assert.Null(changes.IdleTimeout);
    }

    [Fact]
    public void Set_after_remove_and_remove_after_set_cancel_out()
    {
        var session = Stored(("a", "1"));

        session.Remove("a");
        session.Set("a", Bytes("2"));
        session.Set("b", Bytes("x"));
        Assert.True(session.Remove("b"));

        var changes = session.GetChanges();
        Assert.Equal(["a"], changes.Set.Keys);
        Assert.Empty(changes.Removed);
    }

    [Fact]
    public void Clear_removes_every_visible_attribute()
    {
        var session = Stored(("a", "1"), ("b", "2"));
        session.Set("c", Bytes("3"));

        session.Clear();

        Assert.Empty(session.Keys);
        Assert.Equal(0, session.Count);
        var changes = session.GetChanges();
        Assert.Empty(changes.Set);
        Assert.Equal(["a", "b"], changes.Removed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void An_unchanged_session_has_no_changes()
    {
        var session = Stored(("a", "1"));

        Assert.True(session.TryGetValue("a", out _));
        session.SetPrincipal(null);
        session.SetIdleTimeout(Idle);

        Assert.False(session.HasChanges);
        Assert.True(session.GetChanges().IsEmpty);
    }

    [Fact]
    public void Principal_change_is_tracked_and_setting_it_back_cancels_it()
    {
        var session = Stored();

        session.SetPrincipal("alice");
        Assert.Equal("alice", session.Principal);
        Assert.True(session.GetChanges().PrincipalChanged);
        Assert.Equal("alice", session.GetChanges().Principal);

        session.SetPrincipal(null);
        Assert.False(session.HasChanges);
    }

    [Fact]
    public void Idle_timeout_change_is_tracked()
    {
        var session = Stored();

        session.SetIdleTimeout(TimeSpan.FromMinutes(5));

        Assert.Equal(TimeSpan.FromMinutes(5), session.IdleTimeout);
        Assert.Equal(TimeSpan.FromMinutes(5), session.GetChanges().IdleTimeout);
        Assert.Throws<ArgumentOutOfRangeException>(() => session.SetIdleTimeout(TimeSpan.Zero));
    }

    [Fact]
    public void Renew_id_of_a_stored_session_addresses_the_changes_to_the_new_id()
    {
        var session = Stored(("a", "1"));
        var oldId = session.Id;
        var newId = SessionId.Create();

        session.RenewId(newId);

        Assert.True(session.IdChanged);
        Assert.Equal(newId, session.Id);
        Assert.Equal(oldId, session.Snapshot.Id);
        Assert.Equal(newId, session.GetChanges().Id);
        Assert.True(session.TryGetValue("a", out _));
        Assert.Throws<ArgumentException>(() => session.RenewId("not an id"));
    }

    [Fact]
    public void Renew_id_of_a_new_session_changes_the_snapshot_to_create()
    {
        var session = TrackedSession.CreateNew(SessionId.Create(), Now, Idle, TimeSpan.FromHours(8));
        session.Set("a", Bytes("1"));
        var newId = SessionId.Create();

        session.RenewId(newId);

        Assert.False(session.IdChanged);
        Assert.True(session.IsNew);
        var toCreate = session.ToNewSnapshot();
        Assert.Equal(newId, toCreate.Id);
        Assert.Equal(Now + TimeSpan.FromHours(8), toCreate.AbsoluteExpiresAt);
        Assert.Equal(["a"], toCreate.Attributes.Keys);
    }

    [Fact]
    public void A_new_session_becomes_a_creation_snapshot()
    {
        var session = TrackedSession.CreateNew(SessionId.Create(), Now, Idle, TimeSpan.FromHours(8));
        session.Set("a", Bytes("1"));
        session.SetPrincipal("alice");

        var toCreate = session.ToNewSnapshot();

        Assert.Equal(session.Id, toCreate.Id);
        Assert.Equal(Now, toCreate.CreatedAt);
        Assert.Equal(Idle, toCreate.IdleTimeout);
        Assert.Equal("alice", toCreate.Principal);
        Assert.Equal(["a"], toCreate.Attributes.Keys);
    }

    [Fact]
    public void Invalidate_blocks_later_writes()
    {
        var session = Stored(("a", "1"));

        session.Invalidate();

        Assert.True(session.IsInvalidated);
        Assert.Throws<InvalidOperationException>(() => session.Set("b", Bytes("2")));
        Assert.Throws<InvalidOperationException>(() => session.Remove("a"));
        Assert.Throws<InvalidOperationException>(session.Clear);
        Assert.Throws<InvalidOperationException>(() => session.SetPrincipal("x"));
        Assert.Throws<InvalidOperationException>(() => session.RenewId(SessionId.Create()));
    }

    [Fact]
    public void Accept_changes_makes_the_overlay_the_new_baseline()
    {
        var session = TrackedSession.CreateNew(SessionId.Create(), Now, Idle, TimeSpan.FromHours(8));
        session.Set("a", Bytes("1"));
        session.SetPrincipal("alice");

        session.AcceptChanges();

        Assert.False(session.IsNew);
        Assert.False(session.HasChanges);
        Assert.Equal("alice", session.Snapshot.Principal);
        Assert.Equal(["a"], session.Snapshot.Attributes.Keys);

        session.Set("b", Bytes("2"));
        Assert.Equal(["b"], session.GetChanges().Set.Keys);
    }

    [Fact]
    public void Set_enforces_the_limits()
    {
        var session = new TrackedSession(Snapshot(("a", "1")), new SessionLimits { MaxAttributes = 2, MaxValueBytes = 3, MaxNameLength = 4 });

        session.Set("b", Bytes("123"));
        session.Set("a", Bytes("2"));
        Assert.Throws<SessionLimitExceededException>(() => session.Set("c", Bytes("1")));
        Assert.Throws<SessionLimitExceededException>(() => session.Set("a", Bytes("1234")));
        Assert.Throws<SessionLimitExceededException>(() => session.Set("abcde", Bytes("1")));
        Assert.Throws<SessionLimitExceededException>(() => session.Set("", Bytes("1")));
        Assert.Equal(2, session.Count);
    }

    private static TrackedSession Stored(params (string Name, string Value)[] attributes) => new(Snapshot(attributes));

    private static SessionSnapshot Snapshot(params (string Name, string Value)[] attributes)
        => new(SessionId.Create(), Now, Now, Idle, Now + TimeSpan.FromHours(8), null, 3,
            attributes.ToDictionary(a => a.Name, a => Bytes(a.Value), StringComparer.Ordinal));

    private static byte[] Bytes(string value) => Encoding.UTF8.GetBytes(value);

    [Fact]
    public void AcceptStoredValue_makes_an_outside_write_the_baseline_without_a_pending_change()
    {
        var session = new TrackedSession(SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1),
            new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["gone"] = [1] }));

        session.AcceptStoredValue("cart", [7]);
        session.AcceptStoredValue("gone", null);

        Assert.False(session.HasChanges);
        Assert.True(session.TryGetValue("cart", out var cart));
        Assert.Equal(new byte[] { 7 }, cart);
        Assert.False(session.TryGetValue("gone", out _));
        Assert.Equal(2, session.Snapshot.Version);
    }
}
