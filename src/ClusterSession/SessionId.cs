using System.Buffers.Text;
using System.Security.Cryptography;

namespace ClusterSession;

/// <summary>
/// Creates and checks session ids: 192 bits from a CSPRNG, written as 32 characters of
/// unpadded base64url (<c>A-Z a-z 0-9 - _</c>).
/// </summary>
public static class SessionId
{
    /// <summary>The number of random bytes behind one id.</summary>
    public const int ByteLength = 24;

    /// <summary>The exact length of a well-formed id, in characters.</summary>
    public const int Length = 32;

    /// <summary>Creates a new id from the operating system's CSPRNG.</summary>
    public static string Create()
    {
        Span<byte> bytes = stackalloc byte[ByteLength];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>
    /// A cheap syntactic check: exactly <see cref="Length"/> base64url characters. Anything else
    /// (empty, oversized, other characters) is not an id and must never reach a store.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<char> candidate)
    {
        if (candidate.Length != Length)
        {
            return false;
        }

        foreach (var c in candidate)
        {
            if (!IsBase64UrlChar(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc cref="IsWellFormed(ReadOnlySpan{char})"/>
    public static bool IsWellFormed([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? candidate)
        => candidate is not null && IsWellFormed(candidate.AsSpan());

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="id"/> is not well formed.</summary>
    public static void ThrowIfMalformed(string id, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(id))] string? paramName = null)
    {
        if (!IsWellFormed(id))
        {
            throw new ArgumentException($"'{id?.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null"}'-character value is not a session id: ids are {Length} base64url characters made by SessionId.Create().", paramName);
        }
    }

    /// <summary>
    /// A short, non-reversible tag of an id for logs and traces, so that ids themselves (bearer secrets) never reach a
    /// log: the first 8 characters of its <see cref="SessionHandle"/>, so a log line can be matched with the session a
    /// management list or the operator's tool shows.
    /// </summary>
    public static string ToLogTag(string id) => SessionHandle.FromId(id)[..8];

    private static bool IsBase64UrlChar(char c)
        => c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_';
}
