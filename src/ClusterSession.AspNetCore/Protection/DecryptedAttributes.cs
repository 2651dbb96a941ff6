namespace ClusterSession.AspNetCore.Protection;

/// <summary>
/// The attributes of a snapshot <see cref="ValueProtectingSessionStore"/> decrypted, with the names of those that did
/// not decrypt (left out, so they read as absent until the request applies
/// <see cref="ClusterSessionOptions.UnreadableAttributes"/> to them).
/// </summary>
internal sealed class DecryptedAttributes : Dictionary<string, byte[]>
{
    public DecryptedAttributes(int capacity)
        : base(capacity, StringComparer.Ordinal)
    {
    }

    /// <summary>Names whose stored value did not decrypt; null when every value did.</summary>
    public HashSet<string>? Unreadable { get; private set; }

    public void AddUnreadable(string name) => (Unreadable ??= new HashSet<string>(StringComparer.Ordinal)).Add(name);

    /// <summary>Whether the attribute <paramref name="name"/> of <paramref name="snapshot"/> was stored but did not decrypt.</summary>
    public static bool IsUnreadable(SessionSnapshot snapshot, string name)
        => snapshot.Attributes is DecryptedAttributes { Unreadable: { } unreadable } && unreadable.Contains(name);
}
