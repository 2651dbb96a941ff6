namespace ClusterSession.AspNetCore;

/// <summary>What a typed read does with a stored attribute that no longer deserializes (<see cref="ClusterSessionOptions.UnreadableAttributes"/>).</summary>
public enum UnreadableAttributePolicy
{
    /// <summary>
    /// The attribute reads as absent (default); the stored value stays until the application overwrites or
    /// removes it. A warning is logged and the metric counts it. Never fails the request.
    /// </summary>
    TreatAsAbsent = 0,

    /// <summary>
    /// The attribute reads as absent and the whole session ends when the request commits: it is deleted in the
    /// store (on every server) and the client's cookie expires, so the user starts over (and signs in again).
    /// Logged and counted as with <see cref="TreatAsAbsent"/>.
    /// </summary>
    EndSession = 1,

    /// <summary>
    /// The read throws <see cref="SessionAttributeUnreadableException"/> for the application to handle; unhandled,
    /// the request fails with 500. Logged and counted as with <see cref="TreatAsAbsent"/>.
    /// </summary>
    Throw = 2,
}

/// <summary>
/// A stored session attribute no longer deserializes as the type the application asked for, typically because
/// a deploy changed the type. Thrown only under <see cref="UnreadableAttributePolicy.Throw"/>. The message
/// names neither the attribute nor its value; the inner exception is the serializer's.
/// </summary>
public sealed class SessionAttributeUnreadableException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionAttributeUnreadableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>The type the attribute was read as.</summary>
    public Type? RequestedType { get; init; }
}
