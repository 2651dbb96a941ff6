namespace ClusterSession.Bench.Contenders;

/// <summary>
/// What every contender serves, identically: a session of 10 attributes of 100 bytes, a signed-in
/// session (an authentication-ticket-sized attribute and a few small ones), and the endpoints.
/// Endpoints answer with a status code and no body, so a response is complete only when the whole
/// pipeline (including a session commit at the end) has run.
/// </summary>
internal static class Workload
{
    public const int AttributeCount = 10;
    public const int ValueBytes = 100;

    /// <summary>The attribute /read reads and /write writes when no name is given.</summary>
    public const string HotAttribute = "a3";

    /// <summary>Attribute names of the lost-update test start with this.</summary>
    public const string LostUpdatePrefix = "lu";

    /// <summary>The signed-in session's ticket attribute (what cookie authentication with a session store keeps).</summary>
    public const string TicketAttribute = "auth.ticket";

    /// <summary>About the size of a cookie-authentication ticket with a name and a few claims.</summary>
    public const int TicketBytes = 1024;

    /// <summary>The signed-in session's small attributes (a cart id, a culture, a last-seen page).</summary>
    public static readonly string[] SmallAttributes = ["cart", "culture", "last-page"];

    public const int SmallValueBytes = 20;

    /// <summary>The attribute a <c>/signedin</c> request writes after reading the ticket.</summary>
    public const string SignedInWriteTarget = "last-page";

    public static string AttributeName(int index) => "a" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A fresh 100-byte value, so that no store can skip a write as unchanged.</summary>
    public static byte[] NewValue(int bytes = ValueBytes)
    {
        var value = new byte[bytes];
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
