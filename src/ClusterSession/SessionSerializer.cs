using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace ClusterSession;

/// <summary>
/// Typed attribute values as UTF-8 JSON bytes. Prefer the <see cref="JsonTypeInfo{T}"/> overloads
/// with a source-generated <c>JsonSerializerContext</c>: no reflection, trimming- and AOT-safe.
/// </summary>
public static class SessionSerializer
{
    /// <summary>Serializes with source-generated metadata.</summary>
    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> typeInfo)
        => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);

    /// <summary>Deserializes with source-generated metadata.</summary>
    /// <exception cref="JsonException">The bytes are not JSON of <typeparamref name="T"/>.</exception>
    public static T? Deserialize<T>(ReadOnlySpan<byte> utf8Json, JsonTypeInfo<T> typeInfo)
        => JsonSerializer.Deserialize(utf8Json, typeInfo);

    /// <summary>Serializes with reflection-based options (<see cref="JsonSerializerOptions.Web"/> when null).</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Uses reflection-based JSON serialization; use the JsonTypeInfo overload for trimmed apps.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Uses reflection-based JSON serialization; use the JsonTypeInfo overload for AOT apps.")]
    public static byte[] Serialize<T>(T value, JsonSerializerOptions? options = null)
        => JsonSerializer.SerializeToUtf8Bytes(value, options ?? JsonSerializerOptions.Web);

    /// <summary>Deserializes with reflection-based options (<see cref="JsonSerializerOptions.Web"/> when null).</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Uses reflection-based JSON serialization; use the JsonTypeInfo overload for trimmed apps.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Uses reflection-based JSON serialization; use the JsonTypeInfo overload for AOT apps.")]
    public static T? Deserialize<T>(ReadOnlySpan<byte> utf8Json, JsonSerializerOptions? options = null)
        => JsonSerializer.Deserialize<T>(utf8Json, options ?? JsonSerializerOptions.Web);
}
