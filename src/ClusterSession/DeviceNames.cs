namespace ClusterSession;

/// <summary>
/// Turns a User-Agent into what a person recognises in a list of their devices: "Firefox on Windows",
/// "Safari on iPhone". Covers the browsers and systems that make up nearly all real traffic; anything else
/// is named by whichever part is known, or "Unknown device". Order matters: most browsers' User-Agents also
/// name the engines they descend from (Edge says Chrome and Safari, Chrome says Safari). Hosts show it in a user's
/// list of sessions; the operator's tool shows it for sessions read from a store.
/// </summary>
public static class DeviceNames
{
    /// <summary>The name of a device whose User-Agent is missing or not recognised.</summary>
    public const string Unknown = "Unknown device";

    /// <summary>
    /// The session attribute in which a host keeps the User-Agent of the request that signed the session in (UTF-8),
    /// among the attributes it reserves for itself (<c>__cs.</c>), hidden from the application.
    /// </summary>
    public const string UserAgentAttribute = "__cs.ua";

    private static readonly (string Token, string Name)[] Browsers =
    [
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("OPiOS/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("YaBrowser/", "Yandex Browser"),
        ("Vivaldi/", "Vivaldi"),
        ("FxiOS/", "Firefox"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Trident/", "Internet Explorer"),
        ("MSIE ", "Internet Explorer"),
        ("curl/", "curl"),
        ("PostmanRuntime/", "Postman"),
        ("python-requests/", "Python requests"),
        ("okhttp/", "OkHttp"),
    ];

    private static readonly (string Token, string Name)[] Systems =
    [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("iPod", "iPod"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows Phone", "Windows Phone"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("Ubuntu", "Ubuntu"),
        ("Fedora", "Fedora"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];

    /// <summary>The device that signed <paramref name="session"/> in, from its <see cref="UserAgentAttribute"/>; <see cref="Unknown"/> without one.</summary>
    /// <param name="session">A session read from a store.</param>
    /// <returns>The readable device name.</returns>
    public static string Of(SessionSnapshot session)
    {
        ArgumentNullException.ThrowIfNull(session);
        return Describe(session.Attributes.TryGetValue(UserAgentAttribute, out var userAgent) ? System.Text.Encoding.UTF8.GetString(userAgent) : null);
    }

    /// <summary>A readable device name for <paramref name="userAgent"/>; <see cref="Unknown"/> when nothing is recognised.</summary>
    /// <param name="userAgent">A User-Agent header.</param>
    /// <returns>The readable device name, such as "Firefox on Windows".</returns>
    public static string Describe(string? userAgent)
    {
        if (string.IsNullOrWhiteSpace(userAgent))
        {
            return Unknown;
        }

        var browser = Find(userAgent, Browsers);
        if (browser is null && userAgent.Contains("Safari/", StringComparison.Ordinal) && userAgent.Contains("Version/", StringComparison.Ordinal))
        {
            browser = "Safari";
        }

        var system = Find(userAgent, Systems);

        return (browser, system) switch
        {
            (null, null) => Unknown,
            ({ } b, null) => b,
            (null, { } s) => s,
            ({ } b, { } s) => b + " on " + s,
        };
    }

    private static string? Find(string userAgent, (string Token, string Name)[] table)
    {
        foreach (var (token, name) in table)
        {
            if (userAgent.Contains(token, StringComparison.Ordinal))
            {
                return name;
            }
        }

        return null;
    }
}
