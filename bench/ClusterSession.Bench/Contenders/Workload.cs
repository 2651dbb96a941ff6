namespace ClusterSession.Bench.Contenders;

/// <summary>
/// What every contender serves, identically: a session of 10 attributes of 100 bytes, and four
/// endpoints. Endpoints answer with a status code and no body, so a response is complete only
/// when the whole pipeline (including a session commit at the end) has run.
/// </summary>
internal static class Workload
{
    public const int AttributeCount = 10;
    public const int ValueBytes = 100;

    /// <summary>The attribute /read reads and /write writes when no name is given.</summary>
    public const string HotAttribute = "a3";

    /// <summary>Attribute names of the lost-update test start with this.</summary>
    public const string LostUpdatePrefix = "lu";

    public static string AttributeName(int index) => "a" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A fresh 100-byte value, so that no store can skip a write as unchanged.</summary>
    public static byte[] NewValue()
    {
        var value = new byte[ValueBytes];
        Random.Shared.NextBytes(value);
        return value;
    }

    /// <summary>The attribute name a /write request asks for (query <c>name</c>), or the hot one.</summary>
    public static string WriteTarget(Microsoft.AspNetCore.Http.HttpContext context)
    {
        var name = context.Request.Query["name"].ToString();
        return name.Length == 0 ? HotAttribute : name;
    }
}
