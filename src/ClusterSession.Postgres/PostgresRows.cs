using Npgsql;

namespace ClusterSession.Postgres;

/// <summary>Reads the store's result rows into snapshots.</summary>
internal static class PostgresRows
{
    /// <summary>
    /// The Load statement's result: one session row (no name; it also carries the statement's clock) and its attribute
    /// rows, or nothing.
    /// </summary>
    public static async Task<LoadedSession> ReadSessionAsync(NpgsqlDataReader reader, string id, CancellationToken cancellationToken)
    {
        SessionRow? row = null;
        DateTimeOffset storeNow = default;
        var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (reader.IsDBNull(6))
            {
                row = ReadSessionRow(reader, 0);
                storeNow = reader.GetFieldValue<DateTimeOffset>(8);
            }
            else
            {
                attributes[reader.GetString(6)] = reader.GetFieldValue<byte[]>(7);
            }
        }

        return row is { } r ? new(r.ToSnapshot(id, attributes), storeNow) : default;
    }

    /// <summary>
    /// The FindByPrincipal statement's result: rows of (handle, session columns, name, value), grouped by session. The
    /// snapshots carry the handle and no id: the store keeps none.
    /// </summary>
    public static async Task<IReadOnlyList<SessionSnapshot>> ReadSessionsAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var sessions = new List<SessionSnapshot>();
        string? currentHandle = null;
        SessionRow currentRow = default;
        var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var handle = reader.GetString(0);
            if (!string.Equals(handle, currentHandle, StringComparison.Ordinal))
            {
                if (currentHandle is not null)
                {
                    sessions.Add(currentRow.ToHandleSnapshot(currentHandle, attributes));
                    attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                }

                currentHandle = handle;
                currentRow = ReadSessionRow(reader, 1);
            }

            if (!reader.IsDBNull(7))
            {
                attributes[reader.GetString(7)] = reader.GetFieldValue<byte[]>(8);
            }
        }

        if (currentHandle is not null)
        {
            sessions.Add(currentRow.ToHandleSnapshot(currentHandle, attributes));
        }

        return sessions;
    }

    private static SessionRow ReadSessionRow(NpgsqlDataReader reader, int first) => new(
        reader.GetFieldValue<DateTimeOffset>(first),
        reader.GetFieldValue<DateTimeOffset>(first + 1),
        reader.GetFieldValue<TimeSpan>(first + 2),
        reader.GetFieldValue<DateTimeOffset>(first + 3),
        reader.IsDBNull(first + 4) ? null : reader.GetString(first + 4),
        reader.GetInt64(first + 5));

    private readonly record struct SessionRow(
        DateTimeOffset CreatedAt,
        DateTimeOffset LastAccessedAt,
        TimeSpan IdleTimeout,
        DateTimeOffset AbsoluteExpiresAt,
        string? Principal,
        long Version)
    {
        public SessionSnapshot ToSnapshot(string id, Dictionary<string, byte[]> attributes)
            => new(id, CreatedAt, LastAccessedAt, IdleTimeout, AbsoluteExpiresAt, Principal, Version, attributes);

        public SessionSnapshot ToHandleSnapshot(string handle, Dictionary<string, byte[]> attributes)
            => new(null, handle, CreatedAt, LastAccessedAt, IdleTimeout, AbsoluteExpiresAt, Principal, Version, attributes);
    }
}

/// <summary>What a load returned: the session (null when absent or expired) and the store's clock when it was read.</summary>
internal readonly record struct LoadedSession(SessionSnapshot? Snapshot, DateTimeOffset StoreNow);
