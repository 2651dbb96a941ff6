using System.Globalization;
using Microsoft.Extensions.Options;

namespace ClusterSession;

/// <summary>
/// The options every store shares, validated in one place with one message format:
/// <c>{OptionsType}.{Option} is {value}: {what to do}</c>. A store's options class derives from it
/// and adds only what is specific to its server.
/// </summary>
public abstract class SessionStoreOptions
{
    /// <summary>Creates the options with their defaults.</summary>
    protected SessionStoreOptions()
    {
    }

    /// <summary>
    /// How old the last refresh of a session must be, as a fraction of its idle timeout, before a
    /// load refreshes its last access time and expiry again, so that most reads write nothing.
    /// 0 refreshes on every load. Between 0 and 0.5. Default 0.1 (a session with a 20-minute idle
    /// timeout is refreshed by loads at most every 2 minutes, so it may expire up to 2 minutes early).
    /// Saves and compare-and-set always refresh.
    /// </summary>
    public double TouchIntervalFraction { get; set; } = 0.1;

    /// <summary>The attribute limits the store checks before every write. Default <see cref="SessionLimits.Default"/>.</summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <summary>
    /// Checks the options. Returns one message per invalid option, each naming the option and the fix;
    /// an empty list means the options are valid.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (!(TouchIntervalFraction is >= 0 and <= 0.5))
        {
            failures.Add(Failure(nameof(TouchIntervalFraction), TouchIntervalFraction, "use a value from 0 (refresh on every load) to 0.5 (refresh after half the idle timeout); the default is 0.1."));
        }

        if (Limits is null)
        {
            failures.Add(Failure(nameof(Limits), null, "leave it at SessionLimits.Default or set a SessionLimits instance."));
        }

        AddFailures(failures);
        return failures;
    }

    /// <summary>
    /// Throws <see cref="OptionsValidationException"/> (the exception startup validation throws too) listing
    /// every invalid option, when <see cref="Validate()"/> finds any.
    /// </summary>
    /// <exception cref="OptionsValidationException">An option is invalid.</exception>
    public void ThrowIfInvalid()
    {
        var failures = Validate();
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(GetType().Name, GetType(), failures);
        }
    }

    /// <summary>Adds a message per invalid store-specific option; write each with <see cref="Failure"/>.</summary>
    /// <param name="failures">The list to add to.</param>
    protected abstract void AddFailures(ICollection<string> failures);

    /// <summary>
    /// Adds a message per invalid near-cache option (<paramref name="nearCache"/>, the store's <c>NearCache</c>
    /// property) to <paramref name="failures"/>, named as the store's options name them (<c>NearCache.MaxAge</c>).
    /// </summary>
    /// <param name="nearCache">The store's near-cache options; null is reported.</param>
    /// <param name="failures">The list to add to.</param>
    protected void AddNearCacheFailures(NearCacheOptions? nearCache, ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        if (nearCache is null)
        {
            failures.Add(Failure("NearCache", null, "leave the default or set a NearCacheOptions instance."));
        }
        else
        {
            nearCache.AddFailures(Failure, failures);
        }
    }

    /// <summary>A validation message in the one format: <c>{OptionsType}.{option} is {value}: {fix}</c>.</summary>
    /// <param name="option">The option's property name.</param>
    /// <param name="value">Its current value (null is written as "null").</param>
    /// <param name="fix">What to do, as a sentence.</param>
    /// <returns>The message.</returns>
    protected string Failure(string option, object? value, string fix)
        => string.Create(CultureInfo.InvariantCulture, $"{GetType().Name}.{option} is {Describe(value)}: {fix}");

    private static string Describe(object? value) => value switch
    {
        null => "null",
        string text => "\"" + text + "\"",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "null",
    };
}

/// <summary>
/// Startup validation (<c>ValidateOnStart</c>) of any <see cref="SessionStoreOptions"/>: the same
/// messages as <see cref="SessionStoreOptions.ThrowIfInvalid"/>.
/// </summary>
/// <typeparam name="TOptions">The store's options type.</typeparam>
public sealed class SessionStoreOptionsValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : SessionStoreOptions
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = options.Validate();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
