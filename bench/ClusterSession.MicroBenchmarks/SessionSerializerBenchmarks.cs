using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;

namespace ClusterSession.MicroBenchmarks;

/// <summary>Typed attribute values: source-generated JSON against reflection-based JSON.</summary>
[MemoryDiagnoser]
public class SessionSerializerBenchmarks
{
    private readonly Cart _cart = new("user-42", [new CartLine("sku-1", 2), new CartLine("sku-2", 1), new CartLine("sku-3", 5)]);
    private byte[] _bytes = null!;

    [GlobalSetup]
    public void Setup() => _bytes = SessionSerializer.Serialize(_cart, BenchJsonContext.Default.Cart);

    [Benchmark]
    public byte[] Serialize_source_generated() => SessionSerializer.Serialize(_cart, BenchJsonContext.Default.Cart);

    [Benchmark]
    public Cart? Deserialize_source_generated() => SessionSerializer.Deserialize(_bytes, BenchJsonContext.Default.Cart);

    [Benchmark]
    public byte[] Serialize_reflection() => SessionSerializer.Serialize(_cart);

    [Benchmark]
    public Cart? Deserialize_reflection() => SessionSerializer.Deserialize<Cart>(_bytes);
}

public sealed record CartLine(string Sku, int Quantity);

public sealed record Cart(string Owner, IReadOnlyList<CartLine> Lines);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Cart))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
