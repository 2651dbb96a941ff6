using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ClusterSession.AspNetCore.Sessions;

namespace ClusterSession.AspNetCore;

/// <summary>
/// Typed access to an <see cref="IClusterSession"/>: values are stored as UTF-8 JSON (<see cref="SessionSerializer"/>).
/// A stored value that no longer deserializes as <c>T</c> (a deploy changed the type) is handled as
/// <see cref="ClusterSessionOptions.UnreadableAttributes"/> says: by default it reads as absent.
/// </summary>
public static class ClusterSessionExtensions
{
    private const string ReflectionMessage = "Uses reflection-based JSON serialization; use the JsonTypeInfo overload for trimmed or AOT apps.";

    /// <summary>Reads a typed attribute with source-generated metadata; default when absent.</summary>
    public static T? Get<T>(this IClusterSession session, string key, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(typeInfo);
        return session.TryGetValue(key, out var bytes) ? Read(session, bytes, typeInfo) : default;
    }

    /// <summary>Writes a typed attribute with source-generated metadata.</summary>
    public static void Set<T>(this IClusterSession session, string key, T value, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(typeInfo);
        session.Set(key, SessionSerializer.Serialize(value, typeInfo));
    }

    /// <summary>Reads a typed attribute with reflection-based JSON (<see cref="JsonSerializerOptions.Web"/> when null); default when absent.</summary>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static T? Get<T>(this IClusterSession session, string key, JsonSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.TryGetValue(key, out var bytes) ? Read<T>(session, bytes, options) : default;
    }

    /// <summary>Writes a typed attribute with reflection-based JSON (<see cref="JsonSerializerOptions.Web"/> when null).</summary>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static void Set<T>(this IClusterSession session, string key, T value, JsonSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        session.Set(key, SessionSerializer.Serialize(value, options));
    }

    /// <summary>
    /// Atomic typed read-modify-write of one attribute (see <see cref="IClusterSession.UpdateAsync"/>):
    /// <paramref name="update"/> gets the stored value (default when absent) and returns the new one.
    /// </summary>
    public static async ValueTask<T> UpdateAsync<T>(this IClusterSession session, string key, Func<T?, T> update, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(update);
        ArgumentNullException.ThrowIfNull(typeInfo);
        var written = await session.UpdateAsync(
            key,
            current => SessionSerializer.Serialize(update(current is null ? default : Read(session, current, typeInfo)), typeInfo),
            cancellationToken).ConfigureAwait(false);
        return SessionSerializer.Deserialize(written!, typeInfo)!;
    }

    /// <summary>Atomic typed read-modify-write with reflection-based JSON (see <see cref="IClusterSession.UpdateAsync"/>).</summary>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static async ValueTask<T> UpdateAsync<T>(this IClusterSession session, string key, Func<T?, T> update, JsonSerializerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(update);
        var written = await session.UpdateAsync(
            key,
            current => SessionSerializer.Serialize(update(current is null ? default : Read<T>(session, current, options)), options),
            cancellationToken).ConfigureAwait(false);
        return SessionSerializer.Deserialize<T>(written!, options)!;
    }

    private static T? Read<T>(IClusterSession session, byte[] bytes, JsonTypeInfo<T> typeInfo)
    {
        try
        {
            return SessionSerializer.Deserialize(bytes, typeInfo);
        }
        catch (JsonException ex)
        {
            UnreadableAttributes.Handle(session, typeof(T), ex);
            return default;
        }
    }

    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    private static T? Read<T>(IClusterSession session, byte[] bytes, JsonSerializerOptions? options)
    {
        try
        {
            return SessionSerializer.Deserialize<T>(bytes, options);
        }
        catch (JsonException ex)
        {
            UnreadableAttributes.Handle(session, typeof(T), ex);
            return default;
        }
    }
}
