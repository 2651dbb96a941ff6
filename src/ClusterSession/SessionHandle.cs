using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace ClusterSession;

/// <summary>
/// The one digest of a session id, and of a principal name: what every store keys a session by, what session lists,
/// management endpoints, operator tools, logs and near-cache messages show instead of the id.
/// </summary>
/// <remarks>
/// A handle is a keyless one-way hash: the first 128 bits of SHA-256 over a purpose label and the value, written as
/// 22 base64url characters. A session id has 192 random bits, so its handle cannot be turned back into it, and every
/// server and tool derives the same handle without shared configuration. The store never holds the id itself: whoever
/// reads the store (a replica, a backup, a monitoring user) finds handles, which no cookie accepts
/// (docs/security.md). A principal name has far less entropy than an id: its digest keeps names out of key names
/// (what a key listing shows), not out of reach of a dictionary.
/// </remarks>
public static class SessionHandle
{
    /// <summary>The exact length of a handle, in characters.</summary>
    public const int Length = 22;

    private const int HashBytes = 16;

    private static readonly byte[] IdLabel = "ClusterSession.handle/"u8.ToArray();
    private static readonly byte[] PrincipalLabel = "ClusterSession.principal/"u8.ToArray();

    /// <summary>The handle of the session with id <paramref name="sessionId"/>: 22 base64url characters.</summary>
    public static string FromId(string sessionId)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        return Digest(IdLabel, sessionId);
    }

    /// <summary>
    /// The digest of a principal name, 22 base64url characters, under which stores index a principal's sessions so that
    /// no key name carries a user name.
    /// </summary>
    public static string FromPrincipal(string principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        return Digest(PrincipalLabel, principal);
    }

    /// <summary>Whether <paramref name="handle"/> is the handle of <paramref name="sessionId"/>, compared in constant time.</summary>
    public static bool Matches(string sessionId, string handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(FromId(sessionId)), Encoding.ASCII.GetBytes(handle));
    }

    /// <summary>Whether <paramref name="candidate"/> has the shape of a handle: exactly <see cref="Length"/> base64url characters.</summary>
    public static bool IsWellFormed([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? candidate)
        => candidate is { Length: Length } && Base64Url.IsValid(candidate, out var decoded) && decoded == HashBytes;

    private static string Digest(byte[] label, string value)
    {
        var length = label.Length + Encoding.UTF8.GetByteCount(value);
        var buffer = length <= 512 ? stackalloc byte[length] : new byte[length];
        label.CopyTo(buffer);
        Encoding.UTF8.GetBytes(value, buffer[label.Length..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(buffer, hash);
        return Base64Url.EncodeToString(hash[..HashBytes]);
    }
}
