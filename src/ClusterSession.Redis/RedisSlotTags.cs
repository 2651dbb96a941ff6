namespace ClusterSession.Redis;

/// <summary>
/// Redis Cluster hash slots (CRC16-XMODEM of the hash tag, mod 16384) and, for each slot, the shortest tag of
/// [0-9a-zA-Z] that lands in it. A current-layout session key carries the tag of the slot its previous-layout key
/// (hash tag = the session id) had, so the two keys share a slot and one script can RENAME one into the other, also on
/// a cluster. The tag tells 14 bits of a checksum of a 192-bit random id: nothing usable (docs/security.md).
/// </summary>
internal static class RedisSlotTags
{
    /// <summary>The number of hash slots of Redis Cluster.</summary>
    public const int SlotCount = 16384;

    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    private static readonly ushort[] Crc = BuildCrcTable();
    private static readonly Lazy<string[]> Tags = new(BuildTags);

    /// <summary>The tag (1 to 3 characters) whose slot is the slot of <paramref name="id"/> as a hash tag.</summary>
    public static string TagOf(string id) => Tags.Value[SlotOf(id)];

    /// <summary>The hash slot of <paramref name="tag"/> used as a key's hash tag.</summary>
    public static int SlotOf(ReadOnlySpan<char> tag)
    {
        ushort crc = 0;
        foreach (var c in tag)
        {
            // Ids and tags are ASCII: one byte per character.
            crc = (ushort)((crc << 8) ^ Crc[((crc >> 8) ^ (byte)c) & 0xff]);
        }

        return crc & (SlotCount - 1);
    }

    private static ushort[] BuildCrcTable()
    {
        var table = new ushort[256];
        for (var i = 0; i < 256; i++)
        {
            var crc = (ushort)(i << 8);
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }

            table[i] = crc;
        }

        return table;
    }

    private static string[] BuildTags()
    {
        var tags = new string?[SlotCount];
        var left = SlotCount;
        Span<char> buffer = stackalloc char[4];
        for (var length = 1; length <= 4 && left > 0; length++)
        {
            var total = 1;
            for (var i = 0; i < length; i++)
            {
                total *= Alphabet.Length;
            }

            for (var n = 0; n < total && left > 0; n++)
            {
                var rest = n;
                for (var i = length - 1; i >= 0; i--)
                {
                    buffer[i] = Alphabet[rest % Alphabet.Length];
                    rest /= Alphabet.Length;
                }

                var slot = SlotOf(buffer[..length]);
                if (tags[slot] is null)
                {
                    tags[slot] = new string(buffer[..length]);
                    left--;
                }
            }
        }

        return left == 0 ? Array.ConvertAll(tags, t => t!) : throw new InvalidOperationException("Some Redis Cluster slot has no tag of at most 4 characters.");
    }
}
