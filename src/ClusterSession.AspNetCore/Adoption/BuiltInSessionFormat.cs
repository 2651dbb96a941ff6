using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace ClusterSession.AspNetCore.Adoption;

/// <summary>
/// Reads the blob ASP.NET Core's built-in session (<c>DistributedSession</c>) keeps in its <c>IDistributedCache</c>, serialization
/// revision 2: one revision byte, the entry count in 3 bytes (big-endian), the 16-byte session id, then per entry the key's
/// UTF-8 length in 2 bytes, the key, the value's length in 4 bytes and the value. Strict: anything else, short or long, is
/// unreadable, so that a truncated or foreign blob is never half-imported.
/// </summary>
internal static class BuiltInSessionFormat
{
    private const byte Revision = 2;
    private const int HeaderLength = 1 + 3 + 16;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The built-in session's values, in the blob's order, or false when the blob is not a revision-2 session.</summary>
    public static bool TryRead(ReadOnlySpan<byte> blob, [NotNullWhen(true)] out List<KeyValuePair<string, byte[]>>? values)
    {
        values = null;
        if (blob.Length < HeaderLength || blob[0] != Revision)
        {
            return false;
        }

        var count = (blob[1] << 16) | (blob[2] << 8) | blob[3];
        var rest = blob[HeaderLength..];

        // Each entry takes at least 6 bytes: a count the blob cannot hold is a foreign or corrupt blob, not a reason to allocate.
        if (count > rest.Length / 6)
        {
            return false;
        }

        var read = new List<KeyValuePair<string, byte[]>>(count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            if (rest.Length < 2)
            {
                return false;
            }

            int keyLength = BinaryPrimitives.ReadUInt16BigEndian(rest);
            rest = rest[2..];
            if (rest.Length < keyLength + 4)
            {
                return false;
            }

            string key;
            try
            {
                key = StrictUtf8.GetString(rest[..keyLength]);
            }
            catch (DecoderFallbackException)
            {
                return false;
            }

            rest = rest[keyLength..];
            var valueLength = BinaryPrimitives.ReadInt32BigEndian(rest);
            rest = rest[4..];
            if (valueLength < 0 || rest.Length < valueLength || !seen.Add(key))
            {
                return false;
            }

            read.Add(new KeyValuePair<string, byte[]>(key, rest[..valueLength].ToArray()));
            rest = rest[valueLength..];
        }

        if (!rest.IsEmpty)
        {
            return false;
        }

        values = read;
        return true;
    }
}
