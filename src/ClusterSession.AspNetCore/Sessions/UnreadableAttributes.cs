using System.Runtime.ExceptionServices;
using System.Text.Json;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// Applies <see cref="ClusterSessionOptions.UnreadableAttributes"/> where a typed read failed to deserialize a
/// stored attribute. Only <see cref="JsonException"/> counts: it is what stored data of another shape raises,
/// whereas other exceptions are bugs in the application's types and stay as they are.
/// </summary>
internal static class UnreadableAttributes
{
    /// <summary>Returns (the caller then reads default) or throws, as the policy says.</summary>
    public static void Handle(IClusterSession session, Type requestedType, JsonException error)
    {
        if (session is RequestSession request)
        {
            request.OnUnreadableAttribute(requestedType, error);
            return;
        }

        // Another IClusterSession implementation has no options to consult: keep the serializer's exception.
        ExceptionDispatchInfo.Throw(error);
    }
}
