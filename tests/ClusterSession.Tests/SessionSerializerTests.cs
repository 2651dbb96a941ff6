using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterSession.Tests;

public sealed record CartLine(string Sku, int Quantity);

public sealed record Cart(string Owner, IReadOnlyList<CartLine> Lines);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Cart))]
internal sealed partial class TestJsonContext : JsonSerializerContext;

public sealed class SessionSerializerTests
{
    private static readonly Cart Sample = new("alice", [new("sku-1", 2), new("sku-2", 1)]);

    [Fact]
    public void Source_generated_round_trip()
    {
        var bytes = SessionSerializer.Serialize(Sample, TestJsonContext.Default.Cart);

        var back = SessionSerializer.Deserialize(bytes, TestJsonContext.Default.Cart);

        Assert.NotNull(back);
        Assert.Equal(Sample.Owner, back.Owner);
        Assert.Equal(Sample.Lines, back.Lines);
        Assert.Equal("""{"owner":"alice","lines":[{"sku":"sku-1","quantity":2},{"sku":"sku-2","quantity":1}]}""", Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void Reflection_round_trip_uses_web_defaults()
    {
        var bytes = SessionSerializer.Serialize(Sample);

        Assert.StartsWith("""{"owner":""", Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
        Assert.Equal(Sample.Lines, SessionSerializer.Deserialize<Cart>(bytes)!.Lines);
    }

    [Fact]
    public void Primitives_round_trip()
    {
        Assert.Equal(42, SessionSerializer.Deserialize<int>(SessionSerializer.Serialize(42)));
        Assert.Equal("text", SessionSerializer.Deserialize<string>(SessionSerializer.Serialize("text")));
    }

    [Fact]
    public void Bytes_that_are_not_json_of_the_type_throw_json_exception()
    {
        Assert.Throws<JsonException>(() => SessionSerializer.Deserialize(Encoding.UTF8.GetBytes("not json"), TestJsonContext.Default.Cart));
        Assert.Throws<JsonException>(() => SessionSerializer.Deserialize(Encoding.UTF8.GetBytes("[1,2]"), TestJsonContext.Default.Cart));
    }
}
