namespace ClusterSession;

/// <summary>
/// Limits on attribute names, sizes and counts. Checked where a change is made
/// (<see cref="TrackedSession"/>) and again by every store before it writes.
/// </summary>
public sealed class SessionLimits
{
    /// <summary>The default limits.</summary>
    public static SessionLimits Default { get; } = new();

    /// <summary>The longest attribute name, in characters. Default 256.</summary>
    public int MaxNameLength { get; init; } = 256;

    /// <summary>The largest attribute value, in bytes. Default 256 KiB.</summary>
    public int MaxValueBytes { get; init; } = 256 * 1024;

    /// <summary>The most attributes one session may hold. Default 1,000.</summary>
    public int MaxAttributes { get; init; } = 1000;

    /// <summary>A new instance with the same limits (what configuration binds onto, never the shared <see cref="Default"/>).</summary>
    /// <returns>The copy.</returns>
    public SessionLimits Copy() => new() { MaxNameLength = MaxNameLength, MaxValueBytes = MaxValueBytes, MaxAttributes = MaxAttributes };

    /// <summary>Whether <paramref name="other"/> sets the same limits (a host checks that it and its store agree).</summary>
    /// <param name="other">The other limits; null never has the same values.</param>
    /// <returns>True when all three limits are equal.</returns>
    public bool HasSameValues(SessionLimits? other)
        => other is not null && other.MaxNameLength == MaxNameLength && other.MaxValueBytes == MaxValueBytes && other.MaxAttributes == MaxAttributes;

    /// <summary>Throws <see cref="SessionLimitExceededException"/> when <paramref name="name"/> is not an acceptable attribute name.</summary>
    public void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // The messages never quote the name: an attribute name may carry user data, and these messages get logged.
        if (name.Length == 0)
        {
            throw new SessionLimitExceededException("Attribute names must not be empty.");
        }

        if (name.Length > MaxNameLength)
        {
            throw new SessionLimitExceededException(
                $"An attribute name of {name.Length} characters is longer than the limit of {MaxNameLength}: use a shorter name or raise SessionLimits.MaxNameLength.");
        }

        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                i++;
                continue;
            }

            if (char.IsControl(c) || char.IsSurrogate(c))
            {
                throw new SessionLimitExceededException(
                    "Attribute names must not contain control characters or unpaired surrogates.");
            }
        }
    }

    /// <summary>Throws <see cref="SessionLimitExceededException"/> when a value is larger than <see cref="MaxValueBytes"/>.</summary>
    public void ValidateValue(string name, ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxValueBytes)
        {
            throw new SessionLimitExceededException(
                $"An attribute value of {value.Length} bytes is larger than the limit of {MaxValueBytes}: store less in the session or raise SessionLimits.MaxValueBytes.");
        }
    }

    /// <summary>Throws <see cref="SessionLimitExceededException"/> when a session would hold more than <see cref="MaxAttributes"/> attributes.</summary>
    public void ValidateCount(int count)
    {
        if (count > MaxAttributes)
        {
            throw TooManyAttributes();
        }
    }

    /// <summary>
    /// The exception for a change that would leave a session with more than <see cref="MaxAttributes"/>
    /// attributes: for a store that learns of it from its server, which may not say by how many.
    /// </summary>
    public SessionLimitExceededException TooManyAttributes()
        => new($"This change would leave the session with more than {MaxAttributes} attributes: remove attributes or raise SessionLimits.MaxAttributes.");

    /// <summary>
    /// Validates one attribute write: the name, and the value unless <paramref name="value"/> is null
    /// (a removal). The attribute count is the store's to check, as only it knows the stored count.
    /// </summary>
    public void ValidateAttribute(string name, byte[]? value)
    {
        ValidateName(name);
        if (value is not null)
        {
            ValidateValue(name, value);
        }
    }

    /// <summary>
    /// Validates every name and value of <paramref name="changes"/>, and that the change set alone
    /// does not set more than <see cref="MaxAttributes"/> attributes. (Whether the stored session plus
    /// the change stays within the count is for the store to check where it knows the stored count.)
    /// </summary>
    public void Validate(SessionChanges changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ValidateAll(changes.Set);
        foreach (var name in changes.Removed)
        {
            ValidateName(name);
        }
    }

    /// <summary>Validates every attribute of a new session.</summary>
    public void Validate(SessionSnapshot session)
    {
        ArgumentNullException.ThrowIfNull(session);
        ValidateAll(session.Attributes);
    }

    private void ValidateAll(IReadOnlyDictionary<string, byte[]> attributes)
    {
        ValidateCount(attributes.Count);
        foreach (var (name, value) in attributes)
        {
            ValidateName(name);
            ValidateValue(name, value);
        }
    }
}
