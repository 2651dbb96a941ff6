using Xunit;

namespace ClusterSession.Testing;

/// <content>The per-principal session cap (<see cref="ISessionStore.AdmitAsync"/>).</content>
public abstract partial class SessionStoreConformanceTests
{
    private const int Cap = 3;
    private const int ParallelSignIns = 20;

    [Fact]
    public async Task Parallel_admissions_of_one_principal_leave_at_most_the_cap_and_end_the_rest()
    {
        var ids = await CreateSessionsAsync(ParallelSignIns);

        var results = await Task.WhenAll(ids.Select(id => Task.Run(async () => await Store.AdmitAsync(id, "alice", Cap, SessionCapPolicy.EndOldestSession))));

        Assert.All(results, r => Assert.Equal(SessionAdmissionStatus.Admitted, r.Status));
        var alive = await Store.FindByPrincipalAsync("alice");
        Assert.Equal(Cap, alive.Count);
        var ended = results.SelectMany(r => r.EndedHandles).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(ParallelSignIns - Cap, ended.Count);
        Assert.DoesNotContain(alive, s => ended.Contains(s.Handle));
        foreach (var id in ids.Where(id => ended.Contains(SessionHandle.FromId(id))))
        {
            Assert.Null(await Store.LoadAsync(id));
        }
    }

    [Fact]
    public async Task Parallel_admissions_under_the_refuse_policy_admit_exactly_the_cap()
    {
        var ids = await CreateSessionsAsync(ParallelSignIns);

        var results = await Task.WhenAll(ids.Select(id => Task.Run(async () => await Store.AdmitAsync(id, "alice", Cap, SessionCapPolicy.RefuseNewSession))));

        Assert.Equal(Cap, results.Count(r => r.Status == SessionAdmissionStatus.Admitted));
        Assert.Equal(ParallelSignIns - Cap, results.Count(r => r.Status == SessionAdmissionStatus.Refused));
        Assert.All(results, r => Assert.Empty(r.EndedHandles));
        Assert.Equal(Cap, (await Store.FindByPrincipalAsync("alice")).Count);

        // A refused session is left as it was: alive, and bound to nobody.
        for (var i = 0; i < ids.Count; i++)
        {
            var session = await LoadExistingAsync(ids[i]);
            Assert.Equal(results[i].Status == SessionAdmissionStatus.Admitted ? "alice" : null, session.Principal);
        }
    }

    [Fact]
    public async Task Admission_ends_the_oldest_session_first()
    {
        var first = await AdmittedSessionAsync("alice");
        Time.Advance(TimeSpan.FromMinutes(1));
        var second = await AdmittedSessionAsync("alice");
        Time.Advance(TimeSpan.FromMinutes(1));
        var third = await AdmittedSessionAsync("alice");
        Time.Advance(TimeSpan.FromMinutes(1));
        var fourth = await CreateSessionAsync();

        var result = await Store.AdmitAsync(fourth, "alice", Cap, SessionCapPolicy.EndOldestSession);

        Assert.Equal(SessionAdmissionStatus.Admitted, result.Status);
        Assert.Equal([SessionHandle.FromId(first)], result.EndedHandles);
        Assert.Null(await Store.LoadAsync(first));
        Assert.Equal(
            Handles(second, third, fourth),
            (await Store.FindByPrincipalAsync("alice")).Select(s => s.Handle).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Expired_sessions_do_not_count_towards_the_cap()
    {
        for (var i = 0; i < Cap; i++)
        {
            await AdmittedSessionAsync("alice");
        }

        Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        var fresh = await CreateSessionAsync();

        var result = await Store.AdmitAsync(fresh, "alice", Cap, SessionCapPolicy.RefuseNewSession);

        Assert.Equal(SessionAdmissionStatus.Admitted, result.Status);
        Assert.Equal([SessionHandle.FromId(fresh)], (await Store.FindByPrincipalAsync("alice")).Select(s => s.Handle));
    }

    [Fact]
    public async Task Admission_counts_only_the_principal_and_readmission_ends_nothing()
    {
        for (var i = 0; i < Cap; i++)
        {
            await AdmittedSessionAsync("bob");
        }

        var alice = await AdmittedSessionAsync("alice");
        var again = await Store.AdmitAsync(alice, "alice", 1, SessionCapPolicy.RefuseNewSession);

        Assert.Equal(SessionAdmission.Admitted([]).Status, again.Status);
        Assert.Empty(again.EndedHandles);
        Assert.Equal(Cap, (await Store.FindByPrincipalAsync("bob")).Count);
    }

    [Fact]
    public async Task Admission_of_a_session_created_bound_to_the_principal_admits_it_and_ends_nothing()
    {
        var other = await AdmittedSessionAsync("alice");
        var bound = await CreateSessionAsync(principal: "alice");

        var result = await Store.AdmitAsync(bound, "alice", 1, SessionCapPolicy.RefuseNewSession);

        Assert.Equal(SessionAdmissionStatus.Admitted, result.Status);
        Assert.Empty(result.EndedHandles);
        Assert.Equal("alice", (await LoadExistingAsync(other)).Principal);
    }

    [Fact]
    public async Task Admission_of_a_missing_session_is_gone_and_writes_nothing()
    {
        var result = await Store.AdmitAsync(SessionId.Create(), "alice", Cap, SessionCapPolicy.EndOldestSession);

        Assert.Equal(SessionAdmissionStatus.Gone, result.Status);
        Assert.Empty(await Store.FindByPrincipalAsync("alice"));
    }

    [Fact]
    public async Task Admission_rejects_a_cap_below_one()
        => await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await Store.AdmitAsync(SessionId.Create(), "alice", 0, SessionCapPolicy.EndOldestSession));

    private async Task<List<string>> CreateSessionsAsync(int count)
    {
        var ids = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            ids.Add(await CreateSessionAsync());
        }

        return ids;
    }

    private async Task<string> AdmittedSessionAsync(string principal)
    {
        var id = await CreateSessionAsync();
        var result = await Store.AdmitAsync(id, principal, Cap, SessionCapPolicy.EndOldestSession);
        Assert.Equal(SessionAdmissionStatus.Admitted, result.Status);
        Assert.Empty(result.EndedHandles);
        return id;
    }
}
