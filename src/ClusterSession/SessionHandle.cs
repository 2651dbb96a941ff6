using System.Security.Cryptography;
using System.Text;

namespace ClusterSession;

/// <summary>
/// The handle of a session: what session lists, management endpoints and operator tools show instead of its id.
/// A keyless one-way hash (SHA-256, first 128 bits, base64url): the id has 192 random bits, so the handle cannot
/// be turned back into it, and every server and tool derives the same handle without shared configuration.
/// </summary>
public static class SessionHandle
{
    /// <summary>The handle of the session with id <paramref name="sessionId"/>: 22 base64url characters.</summary>
    public static string FromId(string sessionId)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.ASCII.GetBytes("ClusterSession.handle/" + sessionId), hash);
        return System.Buffers.Text.Base64Url.EncodeToString(hash[..16]);
    }

    /// <summary>Whether <paramref name="handle"/> is the handle of <paramref name="sessionId"/>, compared in constant time.</summary>
    public static bool Matches(string sessionId, string handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(FromId(sessionId)), Encoding.ASCII.GetBytes(handle));
    }
}
