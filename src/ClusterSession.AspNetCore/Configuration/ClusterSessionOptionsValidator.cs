using ClusterSession.AspNetCore.Protection;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Configuration;

/// <summary>Checks <see cref="ClusterSessionOptions"/> at startup; each message names the option and the fix.</summary>
internal sealed class ClusterSessionOptionsValidator : IValidateOptions<ClusterSessionOptions>
{
    private const string HostPrefix = "__Host-";
    private const string SecurePrefix = "__Secure-";

    public ValidateOptionsResult Validate(string? name, ClusterSessionOptions options)
    {
        var failures = new List<string>();
        if (options.IdleTimeout <= TimeSpan.Zero)
        {
            failures.Add($"ClusterSessionOptions.IdleTimeout must be positive (it is {options.IdleTimeout}).");
        }

        if (options.AbsoluteLifetime < options.IdleTimeout)
        {
            failures.Add($"ClusterSessionOptions.AbsoluteLifetime ({options.AbsoluteLifetime}) must be at least IdleTimeout ({options.IdleTimeout}): raise it or lower IdleTimeout.");
        }

        if (options.StoreTimeout <= TimeSpan.Zero)
        {
            failures.Add($"ClusterSessionOptions.StoreTimeout must be positive (it is {options.StoreTimeout}).");
        }

        if (options.CircuitBreaker.FailureThreshold < 1)
        {
            failures.Add($"ClusterSessionOptions.CircuitBreaker.FailureThreshold must be at least 1 (it is {options.CircuitBreaker.FailureThreshold}); to turn the circuit breaker off, set CircuitBreaker.Enabled = false.");
        }

        if (options.CircuitBreaker.BreakDuration < StoreCircuitBreaker.MinBreakDuration || options.CircuitBreaker.BreakDuration > StoreCircuitBreaker.MaxBreakDuration)
        {
            failures.Add($"ClusterSessionOptions.CircuitBreaker.BreakDuration is {options.CircuitBreaker.BreakDuration}: use a time between {StoreCircuitBreaker.MinBreakDuration.TotalMilliseconds:0} ms and {StoreCircuitBreaker.MaxBreakDuration.TotalMinutes:0} minutes; the default is 5 seconds.");
        }

        if (options.Limits is null)
        {
            failures.Add("ClusterSessionOptions.Limits must not be null: leave the default or set a SessionLimits.");
        }
        else if (options.EncryptValues && options.Limits.MaxValueBytes <= Protection.AttributeValueProtector.MaxOverhead)
        {
            failures.Add($"ClusterSessionOptions.Limits.MaxValueBytes is {options.Limits.MaxValueBytes}, too small for EncryptValues, which adds up to {Protection.AttributeValueProtector.MaxOverhead} bytes to each value: raise it above {Protection.AttributeValueProtector.MaxOverhead} or turn EncryptValues off.");
        }

        if ((options.Transports & (SessionIdTransports.Cookie | SessionIdTransports.Header)) == 0)
        {
            failures.Add("ClusterSessionOptions.Transports must include Cookie, Header or both.");
        }

        if ((options.Transports & SessionIdTransports.Cookie) != 0 && string.IsNullOrWhiteSpace(options.Cookie.Name))
        {
            failures.Add("ClusterSessionOptions.Cookie.Name must not be empty while the cookie transport is on.");
        }

        if ((options.Transports & SessionIdTransports.Cookie) != 0)
        {
            ValidateCookiePrefix(options.Cookie, failures);
        }

        if ((options.Transports & SessionIdTransports.Header) != 0 && string.IsNullOrWhiteSpace(options.HeaderName))
        {
            failures.Add("ClusterSessionOptions.HeaderName must not be empty while the header transport is on.");
        }

        if (options.StoreUnavailableStatusCode is < 400 or > 599)
        {
            failures.Add($"ClusterSessionOptions.StoreUnavailableStatusCode must be an error status (400-599), not {options.StoreUnavailableStatusCode}.");
        }

        if (options.LimitExceededStatusCode is < 400 or > 599)
        {
            failures.Add($"ClusterSessionOptions.LimitExceededStatusCode must be an error status (400-599), not {options.LimitExceededStatusCode}.");
        }

        if (options.ConflictStatusCode is < 400 or > 599)
        {
            failures.Add($"ClusterSessionOptions.ConflictStatusCode must be an error status (400-599), not {options.ConflictStatusCode}.");
        }

        if (!Enum.IsDefined(options.UnreadableAttributes))
        {
            failures.Add($"ClusterSessionOptions.UnreadableAttributes is {(int)options.UnreadableAttributes}, not a policy: use TreatAsAbsent (the default), EndSession or Throw.");
        }

        if (options.MaxSessionsPerPrincipal is < 1)
        {
            failures.Add($"ClusterSessionOptions.MaxSessionsPerPrincipal must be at least 1 (it is {options.MaxSessionsPerPrincipal}); set it to null for no cap.");
        }

        if (!Enum.IsDefined(options.SessionCapPolicy))
        {
            failures.Add($"ClusterSessionOptions.SessionCapPolicy is {(int)options.SessionCapPolicy}, not a policy: use EndOldestSession (the default) or RefuseNewSession.");
        }

        if (options.SessionCapExceededStatusCode is < 400 or > 599)
        {
            failures.Add($"ClusterSessionOptions.SessionCapExceededStatusCode must be an error status (400-599), not {options.SessionCapExceededStatusCode}.");
        }

        if (options.Events is null)
        {
            failures.Add("ClusterSessionOptions.Events is null: leave it at its default or set a SessionLifecycleEventOptions.");
        }
        else if (options.Events.ClaimHold < TimeSpan.FromSeconds(1))
        {
            failures.Add($"ClusterSessionOptions.Events.ClaimHold must be at least 1 second (it is {options.Events.ClaimHold}); the default is 10 minutes.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>
    /// A cookie named <c>__Host-...</c> or <c>__Secure-...</c> is one browsers refuse to store unless it carries the
    /// attributes its prefix promises (RFC 6265bis, "Cookie Name Prefixes"; browsers compare the prefix without
    /// regard to case). Such a cookie would be dropped without a word: no session would ever stick.
    /// </summary>
    private static void ValidateCookiePrefix(CookieBuilder cookie, List<string> failures)
    {
        var name = cookie.Name;
        if (name is null)
        {
            return;
        }

        var host = name.StartsWith(HostPrefix, StringComparison.OrdinalIgnoreCase);
        var secure = name.StartsWith(SecurePrefix, StringComparison.OrdinalIgnoreCase);
        if (!host && !secure)
        {
            return;
        }

        var prefix = host ? HostPrefix : SecurePrefix;
        var rule = host
            ? "browsers store a __Host- cookie only with Secure, Path=/ and no Domain"
            : "browsers store a __Secure- cookie only with Secure";
        if (cookie.SecurePolicy != CookieSecurePolicy.Always)
        {
            failures.Add($"ClusterSessionOptions.Cookie.SecurePolicy is {cookie.SecurePolicy}, but Cookie.Name '{name}' starts with {prefix} and {rule}: set Cookie.SecurePolicy = CookieSecurePolicy.Always (and serve the app on HTTPS), or use a name without the prefix.");
        }

        if (!host)
        {
            return;
        }

        if (cookie.Path != "/")
        {
            failures.Add($"ClusterSessionOptions.Cookie.Path is {(cookie.Path is null ? "null" : $"'{cookie.Path}'")}, but Cookie.Name '{name}' starts with __Host- and {rule}: set Cookie.Path = \"/\" (the default), or use a __Secure- name to keep a narrower path.");
        }

        if (!string.IsNullOrEmpty(cookie.Domain))
        {
            failures.Add($"ClusterSessionOptions.Cookie.Domain is '{cookie.Domain}', but Cookie.Name '{name}' starts with __Host- and {rule}: set Cookie.Domain = null (the default: the request's host only), or use a __Secure- name to share the cookie with sub-domains.");
        }
    }
}
