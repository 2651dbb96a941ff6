using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Adoption;

/// <summary>
/// Checks at start-up what the imports of <see cref="ClusterSessionOptions.ImportBuiltInSession"/> and
/// <see cref="ClusterSessionOptions.ImportAuthenticationCookies"/> need, so that a missing cache or key ring is a start-up error
/// that names the fix, not every user signed out.
/// </summary>
internal sealed class AdoptionValidator : IValidateOptions<ClusterSessionOptions>
{
    private readonly IServiceProviderIsService? _services;

    public AdoptionValidator(IServiceProvider services) => _services = services.GetService<IServiceProviderIsService>();

    public ValidateOptionsResult Validate(string? name, ClusterSessionOptions options)
    {
        var failures = new List<string>();
        var import = options.ImportBuiltInSession;
        if (import.Enabled)
        {
            if (string.IsNullOrWhiteSpace(import.CookieName))
            {
                failures.Add("ClusterSessionOptions.ImportBuiltInSession.CookieName must name the built-in session's cookie (its default is .AspNetCore.Session).");
            }
            else if (string.Equals(import.CookieName, options.Cookie.Name, StringComparison.Ordinal))
            {
                failures.Add($"ClusterSessionOptions.ImportBuiltInSession.CookieName and ClusterSessionOptions.Cookie.Name are both '{import.CookieName}': give ClusterSession's cookie another name while the import is on.");
            }

            if (_services is { } services && !services.IsService(typeof(IDistributedCache)))
            {
                failures.Add("ClusterSessionOptions.ImportBuiltInSession needs the IDistributedCache the built-in session used: keep its registration (AddStackExchangeRedisCache, AddDistributedSqlServerCache, ...) while the import is on.");
            }

            if (_services is { } dp && !dp.IsService(typeof(IDataProtectionProvider)))
            {
                failures.Add("ClusterSessionOptions.ImportBuiltInSession needs the Data Protection key ring that protected the built-in session's cookies: call services.AddDataProtection() with the key persistence the application used before.");
            }
        }

        if (options.ImportAuthenticationCookies && !options.StoreAuthenticationTickets)
        {
            failures.Add("ClusterSessionOptions.ImportAuthenticationCookies moves tickets into the session and needs StoreAuthenticationTickets = true: turn it on, or turn the import off.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
