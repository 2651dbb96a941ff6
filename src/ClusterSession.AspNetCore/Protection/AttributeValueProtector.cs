using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace ClusterSession.AspNetCore.Protection;

/// <summary>
/// The stored form of an encrypted attribute value (<see cref="ClusterSessionOptions.EncryptValues"/>) and the
/// Data Protection calls that make and read it.
/// </summary>
/// <remarks>
/// Layout: <see cref="Marker"/> (4 bytes: 0xC5 'S' 'E' version 1) followed by the payload of
/// <see cref="IDataProtector.Protect(byte[])"/>. 0xC5 followed by 'S' is never valid UTF-8, so no text or JSON
/// value written before encryption was turned on starts with the marker, and a value shorter than the marker plus a
/// Data Protection header is never taken for one. The protector's purposes are <see cref="Purpose"/> and the
/// attribute's name, so a value moved to another name (or another application) by whoever can write the store fails
/// to decrypt instead of being read under the wrong name. The session id is not bound: a session id never reaches
/// the store (keys are digests of it) and sessions listed by principal are read by digest, so a value copied from one
/// session into another (same application, same name) by a store writer still decrypts. The authentication ticket
/// is bound to its session by the key in the cookie, independently of this.
/// </remarks>
internal sealed class AttributeValueProtector
{
    /// <summary>The root purpose of every value protector; the attribute name is the second purpose.</summary>
    public const string Purpose = "ClusterSession.Values.v1";

    /// <summary>
    /// An upper bound of what encryption adds to a value: the marker, plus what Data Protection's default
    /// algorithms add (magic header, key id, key modifier, IV, MAC: 84 bytes; CBC padding: up to 16).
    /// </summary>
    public const int MaxOverhead = 128;

    private const int MaxCachedNames = 4096;

    /// <summary>Data Protection payloads start with this magic header (0x09F0C9F0, big-endian).</summary>
    private static ReadOnlySpan<byte> DataProtectionHeader => [0x09, 0xF0, 0xC9, 0xF0];

    private readonly Lazy<IDataProtector?> _root;
    private readonly ConcurrentDictionary<string, IDataProtector> _byName = new(StringComparer.Ordinal);

    /// <param name="provider">The application's Data Protection, asked for at the first encrypted value; it may return null (none registered).</param>
    public AttributeValueProtector(Func<IDataProtectionProvider?> provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        _root = new Lazy<IDataProtector?>(() => provider()?.CreateProtector(Purpose), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Marks an encrypted value: 0xC5 'S' 'E' and the format version.</summary>
    public static ReadOnlySpan<byte> Marker => [0xC5, (byte)'S', (byte)'E', 0x01];

    /// <summary>Whether <paramref name="stored"/> is an encrypted value (as opposed to a plain one written without encryption).</summary>
    public static bool IsProtected(ReadOnlySpan<byte> stored)
        => stored.Length > Marker.Length + DataProtectionHeader.Length
           && stored.StartsWith(Marker)
           && stored[Marker.Length..].StartsWith(DataProtectionHeader);

    /// <summary>Encrypts <paramref name="value"/> for the attribute <paramref name="name"/>.</summary>
    public byte[] Protect(string name, byte[] value)
    {
        var protector = For(name) ?? throw new InvalidOperationException(
            "ClusterSessionOptions.EncryptValues needs ASP.NET Core Data Protection: call services.AddDataProtection().");
        var payload = protector.Protect(value);
        var stored = new byte[Marker.Length + payload.Length];
        Marker.CopyTo(stored);
        payload.CopyTo(stored.AsSpan(Marker.Length));
        return stored;
    }

    /// <summary>
    /// Decrypts a value <see cref="IsProtected"/> recognised. False when it does not decrypt: the key is gone or
    /// revoked, the value was altered, or it was written for another attribute name or application.
    /// </summary>
    public bool TryUnprotect(string name, byte[] stored, out byte[] value)
    {
        var protector = For(name);
        if (protector is null)
        {
            // Encrypted values in the store, but no Data Protection in this application to read them.
            value = [];
            return false;
        }

        try
        {
            value = protector.Unprotect(stored[Marker.Length..]);
            return true;
        }
        catch (CryptographicException)
        {
            value = [];
            return false;
        }
    }

    private IDataProtector? For(string name)
    {
        if (_byName.TryGetValue(name, out var protector))
        {
            return protector;
        }

        if (_root.Value is not { } root)
        {
            return null;
        }

        protector = root.CreateProtector(name);
        // Names are the application's, usually a handful; the bound only keeps a name-per-user pattern from growing the cache.
        if (_byName.Count < MaxCachedNames)
        {
            _byName.TryAdd(name, protector);
        }

        return protector;
    }
}
