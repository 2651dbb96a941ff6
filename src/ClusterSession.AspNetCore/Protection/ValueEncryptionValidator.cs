using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Protection;

/// <summary>Fails at startup when <see cref="ClusterSessionOptions.EncryptValues"/> is on without ASP.NET Core Data Protection.</summary>
internal sealed class ValueEncryptionValidator(IServiceProviderIsService services) : IValidateOptions<ClusterSessionOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterSessionOptions options)
        => options.EncryptValues && !services.IsService(typeof(IDataProtectionProvider))
            ? ValidateOptionsResult.Fail(
                "ClusterSessionOptions.EncryptValues needs ASP.NET Core Data Protection: call services.AddDataProtection() (AddAuthentication() calls it too), or turn EncryptValues off.")
            : ValidateOptionsResult.Success;
}
