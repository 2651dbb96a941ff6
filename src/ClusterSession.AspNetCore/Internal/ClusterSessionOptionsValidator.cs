using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>Checks <see cref="ClusterSessionOptions"/> at startup; each message names the option and the fix.</summary>
internal sealed class ClusterSessionOptionsValidator : IValidateOptions<ClusterSessionOptions>
{
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

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
