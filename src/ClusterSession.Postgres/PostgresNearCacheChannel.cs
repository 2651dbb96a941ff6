using System.Security.Cryptography;
using System.Text;

namespace ClusterSession.Postgres;

/// <summary>
/// The name of the near cache's notification channel (LISTEN/NOTIFY) of one set of session tables: stores on the
/// same tables share it, stores on other tables (another schema or prefix, another application on the same
/// database) never hear each other.
/// </summary>
internal static class PostgresNearCacheChannel
{
    /// <summary>The prefix of the hashed form, when the readable one does not fit.</summary>
    public const string HashedPrefix = "clustersession_";

    /// <summary>
    /// <c>{schema}.{prefix}sessions</c> when that is at most 63 bytes of ASCII letters, digits, <c>_ . -</c>
    /// (PostgreSQL's channel names are identifiers of at most 63 bytes); otherwise <c>clustersession_</c> and
    /// 32 hex digits of the SHA-256 of the schema and prefix. Either form needs no quoting inside a SQL string.
    /// </summary>
    public static string For(string schema, string tablePrefix)
    {
        var readable = schema + "." + tablePrefix + "sessions";
        if (readable.Length <= PostgresSessionStoreOptions.MaxIdentifierBytes && readable.All(IsPlain))
        {
            return readable;
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(schema + "\0" + tablePrefix));
        return HashedPrefix + Convert.ToHexStringLower(hash.AsSpan(0, 16));
    }

    /// <summary>
    /// What a notification carries instead of a session id: 32 hex digits of the SHA-256 of the id. PostgreSQL lets any
    /// role that can connect LISTEN to any channel, and a session id is a bearer credential, so ids never go out.
    /// </summary>
    public static string KeyOf(string id) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)).AsSpan(0, 16));

    /// <summary>The SQL expression of <see cref="KeyOf"/> for the text expression <paramref name="id"/>.</summary>
    public static string KeySql(string id) => $"left(encode(sha256(convert_to({id}, 'UTF8')), 'hex'), 32)";

    private static bool IsPlain(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-';
}
