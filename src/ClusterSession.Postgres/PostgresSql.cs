namespace ClusterSession.Postgres;

/// <summary>
/// The SQL of the store for one schema and table prefix, built once. Every statement decides expiry,
/// and dates accesses and new sessions, on the database's clock (<c>now()</c>), one clock for every node
/// of the application whatever their own clocks say. Each takes a "clock" parameter that is null in
/// production; a test clock (a TimeProvider other than the system's) sends its time there instead.
/// With the near cache on (a notification channel given), every statement that changes a session also calls
/// <c>pg_notify</c> in the same statement, so the invalidation is sent when, and only when, the change commits.
/// </summary>
internal sealed class PostgresSql
{
    private const string SessionColumns = "id, created_at, last_accessed_at, idle_timeout, absolute_expires_at, principal, version";

    /// <param name="schema">The schema of the tables.</param>
    /// <param name="tablePrefix">The prefix of the table names.</param>
    /// <param name="unlogged">Whether CreateSchema makes UNLOGGED tables.</param>
    /// <param name="channel">The near cache's notification channel (<see cref="PostgresNearCacheChannel"/>), or null: the statements notify nothing.</param>
    public PostgresSql(string schema, string tablePrefix, bool unlogged, string? channel = null)
    {
        var schemaName = EscapeInsideQuotes(schema);
        var prefix = EscapeInsideQuotes(tablePrefix);
        var sessions = $"\"{schemaName}\".\"{prefix}sessions\"";
        var now1 = Now(1);
        var now2 = Now(2);
        var now3 = Now(3);
        var attributes = $"\"{schemaName}\".\"{prefix}attributes\"";

        // The channel name is made of characters that need no escaping (PostgresNearCacheChannel.For).
        // Each notifying statement gets a CTE "notified" and reads it in its final SELECT: a SELECT in a
        // WITH runs only when something reads it. Payloads: "key:version" for a change, "key" when the session ended (key: PostgresNearCacheChannel.KeySql, a digest of the id: ids never go out).
        var notifies = channel is not null;
        var key1 = NotifyKeySql("$1");
        string Notify(string cte, string source, string payload)
            => notifies ? $",\n    {cte} AS (SELECT pg_notify('{channel}', {payload}) FROM {source})" : string.Empty;
        string Notified(string cte) => notifies ? $", (SELECT count(*) FROM {cte})" : string.Empty;
        Channel = channel;
        SessionsTable = sessions;
        AttributesTable = attributes;
        KeyRingTable = $"\"{schemaName}\".\"{prefix}key_ring\"";
        StoreTable = $"\"{schemaName}\".\"{prefix}store\"";

        var script = ReadSchemaScript().Replace("{schema}", schemaName, StringComparison.Ordinal).Replace("{prefix}", prefix, StringComparison.Ordinal);
        CreateSchema = unlogged ? script.Replace("CREATE TABLE", "CREATE UNLOGGED TABLE", StringComparison.Ordinal) : script;

        // $1 addresses (text[]: the handle, and in the previous layouts the id first), $2 clock, $3 touch fraction. The touch is a conditional UPDATE in the same statement,
        // so a load that must refresh the expiry still costs one round trip, and one that need not writes nothing.
        // The session row also carries the statement's clock: the near cache times a copy's life against it.
        // A touch notifies nothing: the data did not change.
        Load = $"""
            WITH touched AS (
                UPDATE {sessions}
                SET last_accessed_at = {now2}, expires_at = least({now2} + idle_timeout, absolute_expires_at)
                WHERE id = ANY($1) AND expires_at > {now2} AND last_accessed_at <= {now2} - idle_timeout * $3
                RETURNING {SessionColumns}),
            session AS (
                SELECT {SessionColumns} FROM touched
                UNION ALL
                SELECT {SessionColumns} FROM {sessions}
                WHERE id = ANY($1) AND expires_at > {now2} AND NOT EXISTS (SELECT FROM touched))
            SELECT created_at, last_accessed_at, idle_timeout, absolute_expires_at, principal, version, NULL::text AS name, NULL::bytea AS value, {now2} AS now
            FROM session
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, a.name, a.value, NULL
            FROM {attributes} a WHERE a.session_id IN (SELECT id FROM session)
            """;

        // $1 addresses, $2 clock. Takes the row lock first, so that the next statement of the same batch
        // (a new snapshot in READ COMMITTED) reads attributes no other writer can change meanwhile.
        LockLive = $"SELECT FROM {sessions} WHERE id = ANY($1) AND expires_at > {now2} FOR UPDATE";

        // $1 addresses, $2 clock, $3 set names, $4 set values, $5 removed names, $6 max attributes,
        // $7 new idle timeout or null, $8 principal changed, $9 principal.
        // Returns (attribute count after the save or null when gone, new version or null when not written).
        Save = $"""
            WITH live AS (
                SELECT s.id, (SELECT count(*) FROM {attributes}
                        WHERE session_id = s.id AND NOT (name = ANY($3)) AND NOT (name = ANY($5))) + cardinality($3) AS attribute_count
                FROM {sessions} s WHERE s.id = ANY($1) AND s.expires_at > {now2}),
            updated AS (
                UPDATE {sessions} s
                SET version = s.version + 1, last_accessed_at = {now2},
                    idle_timeout = coalesce($7, s.idle_timeout),
                    principal = CASE WHEN $8 THEN $9 ELSE s.principal END,
                    expires_at = least({now2} + coalesce($7, s.idle_timeout), s.absolute_expires_at)
                FROM live WHERE s.id = live.id AND live.attribute_count <= $6
                RETURNING s.id, s.version),
            removed AS (
                DELETE FROM {attributes} WHERE session_id IN (SELECT id FROM updated) AND name = ANY($5)),
            upserted AS (
                INSERT INTO {attributes} (session_id, name, value)
                SELECT updated.id, u.name, u.value FROM updated, unnest($3::text[], $4::bytea[]) AS u(name, value)
                ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value){Notify("notified", "updated", key1 + " || ':' || version")}
            SELECT (SELECT attribute_count FROM live), (SELECT version FROM updated){Notified("notified")}
            """;

        // $1 addresses, $2 clock, $3 name, $4 expected or null, $5 replacement or null, $6 max attributes.
        // Returns (live, succeeded, current value, over the attribute limit, new version when it succeeded).
        CompareAndSet = $"""
            WITH live AS (
                SELECT id FROM {sessions} WHERE id = ANY($1) AND expires_at > {now2}),
            current AS (
                SELECT value FROM {attributes} WHERE session_id IN (SELECT id FROM live) AND name = $3),
            allowed AS (
                SELECT id FROM live
                WHERE $5::bytea IS NULL OR EXISTS (SELECT FROM current)
                   OR (SELECT count(*) FROM {attributes} WHERE session_id = live.id) < $6),
            matched AS (
                SELECT id FROM allowed WHERE (SELECT value FROM current) IS NOT DISTINCT FROM $4::bytea),
            updated AS (
                UPDATE {sessions} s
                SET version = s.version + 1, last_accessed_at = {now2}, expires_at = least({now2} + s.idle_timeout, s.absolute_expires_at)
                FROM matched WHERE s.id = matched.id
                RETURNING s.version),
            removed AS (
                DELETE FROM {attributes} WHERE session_id IN (SELECT id FROM matched) AND name = $3 AND $5::bytea IS NULL),
            upserted AS (
                INSERT INTO {attributes} (session_id, name, value)
                SELECT matched.id, $3, $5::bytea FROM matched WHERE $5::bytea IS NOT NULL
                ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value){Notify("notified", "updated", key1 + " || ':' || version")}
            SELECT EXISTS (SELECT FROM live), EXISTS (SELECT FROM matched), (SELECT value FROM current),
                   EXISTS (SELECT FROM live) AND NOT EXISTS (SELECT FROM allowed), (SELECT version FROM updated){Notified("notified")}
            """;

        // $1 addresses, $2 clock: an expired session that was not swept yet must not block a new one.
        DeleteExpired = $"DELETE FROM {sessions} WHERE id = ANY($1) AND expires_at <= {now2}";

        // $1 key (the handle, or in the previous layout the id), $2 clock, $3 idle timeout, $4 absolute lifetime, $5 principal,
        // $6 version, $7 names, $8 values, $9 the session's other key (text[], empty in the current layout), $10 mark.
        // The session is dated here, on the database's clock, from its lifetimes. Attribute rows are inserted
        // only when the session row was (the foreign key is checked at the end of the statement). $10 (a node of this
        // release writing the previous layout) moves created_at back by under a millisecond so that its microseconds end
        // in 777 (CreatedMark): the upgrade tells sessions created by a node of the previous release, which never does, by it.
        Create = $"""
            WITH created AS (
                INSERT INTO {sessions} (id, created_at, last_accessed_at, idle_timeout, absolute_expires_at, expires_at, principal, version)
                SELECT $1, CASE WHEN $10 THEN c.now - (((extract(microseconds FROM c.now)::bigint - {CreatedMark}) % 1000 + 1000) % 1000) * interval '1 microsecond' ELSE c.now END,
                       c.now, $3, c.now + $4, c.now + least($3, $4), $5, $6 FROM (SELECT {now2} AS now) c
                WHERE NOT EXISTS (SELECT FROM {sessions} WHERE id = ANY($9))
                ON CONFLICT (id) DO NOTHING
                RETURNING id),
            inserted AS (
                INSERT INTO {attributes} (session_id, name, value)
                SELECT created.id, u.name, u.value FROM created, unnest($7::text[], $8::bytea[]) AS u(name, value))
            SELECT count(*) FROM created
            """;

        // $1 addresses, $2 clock. Returns one row when a session was deleted: whether it was still live.
        Delete = $"""
            WITH deleted AS (
                DELETE FROM {sessions} WHERE id = ANY($1) RETURNING expires_at > {now2} AS live){Notify("notified", "deleted", key1)}
            SELECT live{Notified("notified")} FROM deleted
            """;

        // $1 old addresses, $2 new key, $3 clock. ON UPDATE CASCADE moves the attributes in the same statement.
        // One row when the session moved. The old session is announced as ended; nobody holds a copy of the new one.
        ChangeId = $"""
            WITH moved AS (
                UPDATE {sessions} SET id = $2 WHERE id = ANY($1) AND expires_at > {now3} RETURNING id){Notify("notified", "moved", key1)}
            SELECT 1{Notified("notified")} FROM moved
            """;

        // $1 principal, $2 clock. The first column is the handle: no id leaves the database, even from rows of the previous layout.
        FindByPrincipal = $"""
            SELECT {HandleOfKeySql("s.id")}, s.created_at, s.last_accessed_at, s.idle_timeout, s.absolute_expires_at, s.principal, s.version, a.name, a.value
            FROM {sessions} s LEFT JOIN {attributes} a ON a.session_id = s.id
            WHERE s.principal = $1 AND s.expires_at > {now2}
            ORDER BY s.id
            """;

        // $1 principal, $2 handle, $3 clock. Deletes the principal's session with that handle, whichever layout its row is
        // in; one row per deleted session: whether it was live, and its near-cache key.
        DeleteByHandle = $"""
            WITH deleted AS (
                DELETE FROM {sessions} WHERE principal = $1 AND (id = $2 OR (length(id) = {SessionId.Length} AND {HandleSql("id")} = $2))
                RETURNING expires_at > {now3} AS live, {RowKeySql("id")} AS key){Notify("notified", "deleted", "key")}
            SELECT live, key{Notified("notified")} FROM deleted
            """;

        // $1 clock.
        Count = $"SELECT count(*) FROM {sessions} WHERE expires_at > {now1}";

        // $1 clock, $2 batch size. SKIP LOCKED: instances running the cleanup at once split the work
        // instead of waiting for each other, and a session a request is saving right now is left alone.
        // The deleted sessions of the current layout (keyed by 22-character handles) are reported on the lifecycle event
        // channel in the same statement: the notifications go out when the deletion commits, and never without it.
        // The payload is SessionLifecycleEvent.Expired's wire format ("1|x<handle>|2|2|<handle>|<unix ms>").
        EventChannel = PostgresNearCacheChannel.For(schema, tablePrefix + "events_");
        Cleanup = $"""
            WITH victims AS (
                SELECT id FROM {sessions} WHERE expires_at <= {now1}
                ORDER BY expires_at LIMIT $2
                FOR UPDATE SKIP LOCKED),
            deleted AS (DELETE FROM {sessions} s USING victims v WHERE s.id = v.id RETURNING s.id),
            notified AS (
                SELECT pg_notify('{EventChannel}', '1|x' || id || '|2|2|' || id || '|' || floor(extract(epoch FROM {now1}) * 1000)::bigint)
                FROM deleted WHERE length(id) = {SessionHandle.Length})
            SELECT (SELECT count(*) FROM deleted), (SELECT count(*) FROM notified)
            """;

        // $1 event id, $2 hold. A claim whose hold ran out may be taken again.
        var claims = $"\"{schemaName}\".\"{prefix}event_claims\"";
        EventClaimsTable = claims;
        ClaimEvent = $"""
            INSERT INTO {claims} AS c (event_id, expires_at) VALUES ($1, now() + $2)
            ON CONFLICT (event_id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE c.expires_at <= now()
            """;
        PruneClaims = $"DELETE FROM {claims} WHERE expires_at <= now()";
    }

    /// <summary>The near cache's notification channel, or null when the statements notify nothing.</summary>
    public string? Channel { get; }

    /// <summary>The session lifecycle events' notification channel (<see cref="ISessionEventChannel"/>).</summary>
    public string EventChannel { get; }

    /// <summary>Claims a lifecycle event for one node: one row affected when this caller holds the claim.</summary>
    public string ClaimEvent { get; }

    /// <summary>The table of lifecycle event claims.</summary>
    public string EventClaimsTable { get; }

    /// <summary>Deletes the claims whose hold ran out.</summary>
    public string PruneClaims { get; }

    public string SessionsTable { get; }

    public string AttributesTable { get; }

    public string CreateSchema { get; }

    /// <summary>The Data Protection key ring table (PostgresSessionStore.KeyRing.cs holds its two statements).</summary>
    public string KeyRingTable { get; }

    /// <summary>The store's own table: layout marker and node heartbeats (PostgresSessionStore.Layout.cs holds its statements).</summary>
    public string StoreTable { get; }

    public string Load { get; }

    public string LockLive { get; }

    public string Save { get; }

    public string CompareAndSet { get; }

    public string DeleteExpired { get; }

    public string Create { get; }

    public string Delete { get; }

    public string ChangeId { get; }

    public string FindByPrincipal { get; }

    public string DeleteByHandle { get; }

    public string Count { get; }

    public string Cleanup { get; }

    /// <summary>The microseconds (modulo 1,000) of created_at on a session a node of this release created in the previous layout.</summary>
    internal const int CreatedMark = 777;

    /// <summary>
    /// SQL for the <see cref="SessionHandle.FromId"/> of the text expression <paramref name="id"/>: base64url of the first 16 bytes
    /// of SHA-256 over "ClusterSession.handle/" and the id (PostgreSQL 11+ has sha256()).
    /// </summary>
    internal static string HandleSql(string id)
        => $"translate(rtrim(encode(substring(sha256(convert_to('ClusterSession.handle/' || {id}, 'UTF8')) from 1 for 16), 'base64'), '='), '+/', '-_')";

    /// <summary>SQL for the handle of a key column: computed from an id of the previous layout, the key itself otherwise.</summary>
    internal static string HandleOfKeySql(string key) => $"CASE WHEN length({key}) = {SessionId.Length} THEN {HandleSql(key)} ELSE {key} END";

    /// <summary>
    /// SQL for the near-cache key of a session row: the previous release's digest of the id for a row of the previous layout
    /// (nodes that may still run it understand it), the handle otherwise.
    /// </summary>
    internal static string RowKeySql(string key) => $"CASE WHEN length({key}) = {SessionId.Length} THEN {PostgresNearCacheChannel.KeySql(key)} ELSE {key} END";

    /// <summary>
    /// SQL for the near-cache key of the session a statement addresses by <paramref name="addresses"/> (text[]): while the
    /// addresses hold the id (first), the previous release's digest of it; otherwise the handle (the only address).
    /// </summary>
    internal static string NotifyKeySql(string addresses)
        => $"CASE WHEN cardinality({addresses}::text[]) > 1 THEN {PostgresNearCacheChannel.KeySql($"({addresses}::text[])[1]")} ELSE ({addresses}::text[])[1] END";

    /// <summary>"now" in a statement whose parameter <paramref name="parameter"/> is the clock: the database's unless a test clock is sent.</summary>
    private static string Now(int parameter) => $"coalesce(${parameter}::timestamptz, now())";

    /// <summary>Escapes a name for use between double quotes: the only special character there is the quote itself.</summary>
    internal static string EscapeInsideQuotes(string name) => name.Replace("\"", "\"\"", StringComparison.Ordinal);

    /// <summary>The DDL script shipped as schema.sql, with its placeholders.</summary>
    internal static string ReadSchemaScript()
    {
        using var stream = typeof(PostgresSql).Assembly.GetManifestResourceStream("ClusterSession.Postgres.schema.sql")
            ?? throw new InvalidOperationException("The embedded schema.sql is missing from ClusterSession.Postgres; the package is damaged.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

/// <summary>The statements of the per-principal session cap (PostgresSessionStore.Cap.cs), for one schema and table prefix.</summary>
internal sealed class PostgresCapSql
{
    public PostgresCapSql(string sessionsTable, string? channel)
    {
        var ended = channel is null ? string.Empty : $"""
            ,
            notified AS (
                SELECT pg_notify('{channel}', payload) FROM (
                    SELECT key AS payload, 0 AS position FROM ended
                    UNION ALL
                    SELECT {PostgresSql.NotifyKeySql("$1")} || ':' || version, 1 FROM bound) n
                ORDER BY position)
            """;
        var notified = channel is null ? string.Empty : ", (SELECT count(*) FROM notified)";
        // $1 lock name (the table and the principal): admissions of one principal queue here until the transaction ends.
        LockPrincipal = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

        // $1 addresses, $2 principal, $3 clock, $4 max, $5 refuse at the cap. Counts the principal's other live sessions,
        // then either refuses, or deletes the oldest beyond the cap (first absolute expiry first) and binds the session.
        // Returns (live, admitted, ended handles, new version when bound, ended near-cache keys). A session already bound to the principal is admitted
        // and ends nothing. With the near cache on, the ended sessions are announced as ended, then (pg_notify is volatile,
        // so it runs after the sort) the bound one with its new version.
        var now = "coalesce($3::timestamptz, now())";
        Admit = $"""
            WITH target AS (
                SELECT principal FROM {sessionsTable} WHERE id = ANY($1) AND expires_at > {now} FOR UPDATE),
            others AS (
                SELECT id, absolute_expires_at, created_at FROM {sessionsTable}
                WHERE principal = $2 AND id <> ALL($1) AND expires_at > {now}),
            verdict AS (
                SELECT EXISTS (SELECT FROM target) AS live,
                       coalesce((SELECT principal = $2 FROM target), false) AS already,
                       (SELECT count(*) FROM others) AS n),
            decision AS (
                SELECT live, live AND (already OR n < $4 OR NOT $5) AS admitted, live AND NOT already AND (n < $4 OR NOT $5) AS act
                FROM verdict),
            ended AS (
                DELETE FROM {sessionsTable} s
                USING (SELECT id FROM others ORDER BY absolute_expires_at, created_at, id
                       LIMIT greatest((SELECT n FROM verdict) - ($4 - 1), 0)) o
                WHERE s.id = o.id AND (SELECT act FROM decision)
                RETURNING {PostgresSql.HandleOfKeySql("s.id")} AS handle, {PostgresSql.RowKeySql("s.id")} AS key),
            bound AS (
                UPDATE {sessionsTable} SET principal = $2, version = version + 1
                WHERE id = ANY($1) AND (SELECT act FROM decision)
                RETURNING id, version){ended}
            SELECT d.live, d.admitted, array(SELECT handle FROM ended), (SELECT version FROM bound), array(SELECT key FROM ended){notified} FROM decision d
            """;
    }

    public string LockPrincipal { get; }

    public string Admit { get; }
}
