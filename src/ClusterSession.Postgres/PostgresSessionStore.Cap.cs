using ClusterSession.Caching;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The per-principal session cap: one transaction (a two-statement batch, which Npgsql runs in one implicit
/// transaction) that takes an advisory lock for the principal, so admissions of one principal run one after the
/// other on every node, then counts, refuses or deletes the oldest, and binds the session, judged on the database's clock.
/// </content>
public sealed partial class PostgresSessionStore
{
    /// <inheritdoc />
    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckAdmit(id, principal, maxSessions, policy);
        return _layer is { } layer ? layer.AdmitAsync(id, principal, maxSessions, policy, cancellationToken) : AdmitDirectAsync(id, principal, maxSessions, policy, cancellationToken);
    }

    private ValueTask<SessionAdmission> AdmitDirectAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken)
    {
        var state = (Store: this, Id: id, Principal: principal, Max: maxSessions, Refuse: policy == SessionCapPolicy.RefuseNewSession);
        if (_layer is { } layer)
        {
            // The sessions the cap ends are known only from the statement's result: the admission returns once every
            // live node acknowledged their ends (docs/near-cache.md, "Ends are acknowledged").
            return layer.EndFoundAsync(
                async token =>
                {
                    var ended = new List<string>();
                    var admission = await RunAsync(
                        "admit",
                        (State: state, Ended: ended),
                        static (s, token) => s.State.Store.OwnWriteAsync(s.State.Store.KeysOf(s.State.Id), s, static (s, keys, write, token) => s.State.Store.AdmitCoreAsync(keys, s.State.Principal, s.State.Max, s.State.Refuse, write, s.Ended, token), token),
                        token).ConfigureAwait(false);
                    return (admission, (IReadOnlyCollection<string>)ended);
                },
                cancellationToken);
        }

        return RunAsync(
            "admit",
            state,
            static (s, token) => s.Store.AdmitCoreAsync(s.Store.KeysOf(s.Id), s.Principal, s.Max, s.Refuse, write: null, ended: null, token),
            cancellationToken);
    }

    private async Task<SessionAdmission> AdmitCoreAsync(SessionKeys keys, string principal, int maxSessions, bool refuse, OwnWrite? write, List<string>? ended, CancellationToken token)
    {
        var sql = _capSql ??= new PostgresCapSql(_sql.SessionsTable, _sql.Channel);
        var batch = CreateBatch(
            write,
            Command(sql.LockPrincipal, Text(_sql.SessionsTable + "\n" + principal)),
            Command(sql.Admit, TextArray(keys.Addresses), Text(principal), Clock(_timeProvider), Int(maxSessions), Bool(refuse)));
        await using (batch.ConfigureAwait(false))
        {
            var reader = await batch.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(token).ConfigureAwait(false);
                await reader.ReadAsync(token).ConfigureAwait(false);
                if (!reader.GetBoolean(0))
                {
                    return SessionAdmission.Gone;
                }

                if (!reader.GetBoolean(1))
                {
                    return SessionAdmission.Refused;
                }

                if (!reader.IsDBNull(3))
                {
                    write?.Expect(reader.GetInt64(3));
                }

                // The ended sessions are known by handle (the result) and by near-cache key (this node's copies go; with
                // the near cache on, the layer waits for the other nodes' acknowledgements of their ends).
                var endedKeys = reader.GetFieldValue<string[]>(4);
                DropCopies(endedKeys);
                ended?.AddRange(endedKeys);
                return SessionAdmission.Admitted(reader.GetFieldValue<string[]>(2));
            }
        }
    }
}
