namespace ClusterSession.AspNetCore.Tests.V1
{
    /// <summary>The basket as the old deploy stores it: the items' names.</summary>
    internal sealed record Basket(string[] Items);
}

namespace ClusterSession.AspNetCore.Tests.V2
{
    /// <summary>The basket after a deploy changed its shape: only a count, under the same JSON name.</summary>
    internal sealed record Basket(int Items);
}
