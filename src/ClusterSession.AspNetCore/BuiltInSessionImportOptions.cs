namespace ClusterSession.AspNetCore;

/// <summary>
/// The import of ASP.NET Core's built-in session (<c>services.AddSession()</c>) when an application adopts ClusterSession
/// (<see cref="ClusterSessionOptions.ImportBuiltInSession"/>): a request that carries the built-in's session cookie and no
/// ClusterSession id, and that uses its session, gets a new ClusterSession session holding the built-in session's values
/// (read once from the application's <c>IDistributedCache</c>); the built-in's cache entry is deleted and its cookie expired.
/// docs/migrating.md.
/// </summary>
public sealed class BuiltInSessionImportOptions
{
    /// <summary>
    /// Whether the import is on. It needs the <c>IDistributedCache</c> the built-in session used (keep
    /// <c>AddStackExchangeRedisCache</c>, <c>AddDistributedSqlServerCache</c>, ... registered) and the Data Protection
    /// key ring that protected its cookie (keep the application's key persistence). Turn it off once the built-in's
    /// idle timeout has passed since the deploy. Default false.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>The built-in session's cookie name, as its <c>SessionOptions.Cookie.Name</c>. Default <c>.AspNetCore.Session</c>.</summary>
    public string CookieName { get; set; } = ".AspNetCore.Session";

    /// <summary>The built-in session's cookie path, used to expire the cookie after the import. Default <c>/</c>.</summary>
    public string CookiePath { get; set; } = "/";

    /// <summary>The built-in session's cookie domain, used to expire the cookie after the import. Default null (the request host).</summary>
    public string? CookieDomain { get; set; }
}
