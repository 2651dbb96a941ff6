using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Adoption;

/// <summary>
/// What ClusterSession needs of ASP.NET Core's built-in session to import it (<see cref="ClusterSessionOptions.ImportBuiltInSession"/>):
/// its cookie's key, its entry in the application's <see cref="IDistributedCache"/>, and the removal of that entry. The built-in
/// protects the cookie with Data Protection, purpose <c>SessionMiddleware</c>, as unpadded base64 of the protected bytes of a GUID
/// string, which is also the cache key. The request-side logic (when to import, what the response says) is RequestSession.Import.cs.
/// </summary>
internal sealed class BuiltInSessionImporter
{
    /// <summary>The Data Protection purpose of the built-in session's cookie (<c>nameof(SessionMiddleware)</c>); fixed, or no old cookie would read.</summary>
    private const string CookiePurpose = "SessionMiddleware";

    /// <summary>The length of the built-in's session key, a GUID in its "D" form.</summary>
    private const int KeyLength = 36;

    /// <summary>A protected GUID is under 200 characters; anything much longer was not made by the built-in session.</summary>
    private const int MaxCookieLength = 512;

    private const string StoreName = "built-in session's IDistributedCache";

    private readonly IServiceProvider _services;
    private readonly TimeSpan _timeout;
    private IDataProtector? _protector;
    private IDistributedCache? _cache;

    public BuiltInSessionImporter(IServiceProvider services, IOptions<ClusterSessionOptions> options)
    {
        _services = services;
        _timeout = options.Value.StoreTimeout;
    }

    private IDataProtector Protector => _protector ??= _services.GetRequiredService<IDataProtectionProvider>().CreateProtector(CookiePurpose);

    private IDistributedCache Cache => _cache ??= _services.GetRequiredService<IDistributedCache>();

    /// <summary>The built-in's session key in <paramref name="cookie"/>, or null when the cookie is not one the built-in protected with this key ring.</summary>
    public string? UnprotectKey(string cookie)
    {
        if (cookie.Length is 0 or > MaxCookieLength)
        {
            return null;
        }

        var padded = (cookie.Length % 4) switch
        {
            2 => cookie + "==",
            3 => cookie + "=",
            _ => cookie,
        };
        Span<byte> buffer = stackalloc byte[MaxCookieLength];
        if (!Convert.TryFromBase64String(padded, buffer, out var written))
        {
            return null;
        }

        byte[] key;
        try
        {
            key = Protector.Unprotect(buffer[..written].ToArray());
        }
        catch (CryptographicException)
        {
            return null;
        }

        return key.Length == KeyLength && Guid.TryParseExact(Encoding.UTF8.GetString(key), "D", out var guid)
            ? guid.ToString("D")
            : null;
    }

    /// <summary>The built-in session's blob, or null when the cache holds none (expired, imported already, never stored).</summary>
    public async ValueTask<byte[]?> ReadAsync(string key, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        try
        {
            return await Cache.GetAsync(key, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unavailable("read", ex, deadline);
        }
    }

    /// <summary>Deletes the built-in session's entry, so that its cookie, replayed, finds nothing.</summary>
    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        try
        {
            await Cache.RemoveAsync(key, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unavailable("delete", ex, deadline);
        }
    }

    /// <summary>
    /// A cache failure as the outage the application sees. The driver's exception is not kept: its message may quote the cache
    /// key, which is the old session's credential.
    /// </summary>
    private SessionStoreUnavailableException Unavailable(string operation, Exception exception, CancellationTokenSource deadline)
        => deadline.IsCancellationRequested
            ? SessionStoreUnavailableException.TimedOut(StoreName, operation, _timeout, "ClusterSessionOptions.StoreTimeout")
            : SessionStoreUnavailableException.Failed(StoreName, operation, exception.GetType().Name, "Check the cache the built-in session used; the import is tried again on the user's next request.");
}
