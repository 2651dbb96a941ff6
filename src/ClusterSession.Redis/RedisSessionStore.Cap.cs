using System.Collections.ObjectModel;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// The per-principal session cap. The principal index (a sorted set scored by absolute expiry) is the register of
/// admitted sessions, and one script on that key alone counts, refuses or pops the oldest, and adds: atomic per
/// principal in a cluster too. "Oldest" is the lowest score, the first absolute expiry: the session that started
/// first. The session's own hash (another slot) gets the principal before the script runs, so a reader that prunes
/// the index by the hashes never drops an admitted session; a refusal puts the old principal back.
/// </content>
public sealed partial class RedisSessionStore
{
    /// <inheritdoc />
    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckAdmit(id, principal, maxSessions, policy);
        return _layer is { } layer ? layer.AdmitAsync(id, principal, maxSessions, policy, cancellationToken) : AdmitDirectAsync(id, principal, maxSessions, policy, cancellationToken);
    }

    private ValueTask<SessionAdmission> AdmitDirectAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken)
    {
        return RunAsync(
            "admit",
            (Store: this, Id: id, Principal: principal, Max: maxSessions, Policy: policy),
            static (s, token) => s.Store.AdmitCoreAsync(s.Id, s.Principal, s.Max, s.Policy, token),
            cancellationToken);
    }

    private async Task<SessionAdmission> AdmitCoreAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken token)
    {
        var session = RedisSessionRef.FromId(id);
        var bound = await SetPrincipalOnHashAsync(session, principal, token).ConfigureAwait(false);
        if (bound is not { } previous)
        {
            return SessionAdmission.Gone;
        }

        if (string.Equals(previous.Principal, principal, StringComparison.Ordinal))
        {
            // Bound already (admitted, or bound without a sign-in): admitted, as on every store; the index lists it.
            await IndexAddAsync(principal, session, "a", previous.AbsoluteMs, token).ConfigureAwait(false);
            return SessionAdmission.Admitted([]);
        }

        if (Layout == RedisLayout.Migrating)
        {
            // The cap counts the current index: bring the principal's previous-layout entries into it first.
            await MovePrincipalIndexAsync(principal, token).ConfigureAwait(false);
        }

        var ended = await RunAdmitScriptAsync(session, principal, previous.AbsoluteMs, maxSessions, policy, token).ConfigureAwait(false);
        if (ended is null)
        {
            // The index may still list sessions that ended by their idle timeout (it is scored by absolute expiry):
            // drop those by their hashes, then ask once more.
            await FindByPrincipalCoreAsync(principal, token).ConfigureAwait(false);
            ended = await RunAdmitScriptAsync(session, principal, previous.AbsoluteMs, maxSessions, policy, token).ConfigureAwait(false);
        }

        if (ended is null)
        {
            await SetPrincipalOnHashAsync(session, previous.Principal, token).ConfigureAwait(false);
            return SessionAdmission.Refused;
        }

        if (previous.Principal is { } old)
        {
            await IndexRemoveAsync(old, session, token).ConfigureAwait(false);
        }

        // The popped sessions are out of the index already; their hashes go now, one single-slot call each.
        await Task.WhenAll(ended.Select(e => EndSessionAsync(e, null, token))).ConfigureAwait(false);
        return SessionAdmission.Admitted(ended.Select(e => e.Handle).ToArray());
    }

    /// <summary>Sets (or, for null, clears) the principal field of a live session; null when the session is gone.</summary>
    private async Task<(string? Principal, long AbsoluteMs)?> SetPrincipalOnHashAsync(RedisSessionRef session, string? principal, CancellationToken token)
    {
        var args = RedisScripts.SaveArgs(Clock(), _announce, _options.Limits.MaxAttributes, idle: null, (principal, true), ReadOnlyDictionary<string, byte[]>.Empty, []);
        var result = await WriteChangeAsync(session, RedisScripts.Save, args, token).ConfigureAwait(false);
        return (int)result[0] != 1 ? null : ((int)result[3] == 1 ? (string?)result[4] : null, (long)result[2]);
    }

    /// <summary>
    /// Runs <see cref="RedisCapScripts.Admit"/> on the index this node writes (in layout 2 the previous release's, whose
    /// members are ids): the ended sessions when admitted, null when refused.
    /// </summary>
    private async Task<RedisSessionRef[]?> RunAdmitScriptAsync(RedisSessionRef session, string principal, long absoluteMs, int maxSessions, SessionCapPolicy policy, CancellationToken token)
    {
        var previousLayout = Layout == RedisLayout.Previous;
        var index = previousLayout ? _keys.PreviousIndex(principal) : _keys.Index(principal);
        RedisValue[] args = [Clock(), previousLayout ? session.Id : session.Member, absoluteMs, maxSessions, policy == SessionCapPolicy.RefuseNewSession ? "r" : "e"];
        var result = (RedisResult[])(await WriteAsync(RedisCapScripts.Admit, index, args, token).ConfigureAwait(false))!;
        if ((int)result[0] != 1)
        {
            return null;
        }

        var ended = new List<RedisSessionRef>(result.Length - 1);
        for (var i = 1; i < result.Length; i++)
        {
            var member = (string?)result[i];
            RedisSessionRef? popped = previousLayout
                ? (SessionId.IsWellFormed(member) ? RedisSessionRef.FromId(member) : null)
                : RedisSessionRef.FromMember(member);
            if (popped is { } found)
            {
                ended.Add(found);
            }
        }

        return [.. ended];
    }
}
