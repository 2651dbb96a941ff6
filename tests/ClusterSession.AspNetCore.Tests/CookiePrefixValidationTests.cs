using ClusterSession.AspNetCore.Configuration;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// A <c>__Host-</c> or <c>__Secure-</c> session cookie without the attributes its prefix needs is one browsers drop
/// without a word; the options validator refuses it at start-up, naming the option and the fix.
/// </summary>
public sealed class CookiePrefixValidationTests
{
    [Theory]
    [InlineData("__Host-session")]
    [InlineData("__host-session")]
    [InlineData("__Secure-session")]
    [InlineData("__SECURE-session")]
    public void A_prefixed_name_without_SecurePolicy_Always_is_refused_naming_the_fix(string name)
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = name;

        var failure = Assert.Single(Failures(options));

        Assert.Contains("ClusterSessionOptions.Cookie.SecurePolicy is SameAsRequest", failure, StringComparison.Ordinal);
        Assert.Contains($"'{name}'", failure, StringComparison.Ordinal);
        Assert.Contains("set Cookie.SecurePolicy = CookieSecurePolicy.Always", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("__Host-session")]
    [InlineData("__Secure-session")]
    public void A_prefixed_name_with_the_defaults_and_SecurePolicy_Always_is_accepted(string name)
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = name;
        options.Cookie.SecurePolicy = CookieSecurePolicy.Always;

        Assert.Empty(Failures(options));
    }

    [Fact]
    public void A_Host_name_with_a_domain_is_refused_pointing_to_Secure_for_sub_domains()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = "__Host-session";
        options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
        options.Cookie.Domain = "example.test";

        var failure = Assert.Single(Failures(options));

        Assert.Contains("ClusterSessionOptions.Cookie.Domain is 'example.test'", failure, StringComparison.Ordinal);
        Assert.Contains("set Cookie.Domain = null", failure, StringComparison.Ordinal);
        Assert.Contains("__Secure-", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/app")]
    [InlineData(null)]
    public void A_Host_name_with_a_path_other_than_the_root_is_refused(string? path)
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = "__Host-session";
        options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
        options.Cookie.Path = path;

        var failure = Assert.Single(Failures(options));

        Assert.Contains("ClusterSessionOptions.Cookie.Path is", failure, StringComparison.Ordinal);
        Assert.Contains("set Cookie.Path = \"/\"", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_Host_name_breaking_every_rule_gets_one_message_per_option()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = "__Host-session";
        options.Cookie.SecurePolicy = CookieSecurePolicy.None;
        options.Cookie.Domain = "example.test";
        options.Cookie.Path = "/app";

        var failures = Failures(options);

        Assert.Equal(3, failures.Count);
        Assert.Contains(failures, f => f.StartsWith("ClusterSessionOptions.Cookie.SecurePolicy is None", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("ClusterSessionOptions.Cookie.Path is '/app'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("ClusterSessionOptions.Cookie.Domain is 'example.test'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_Secure_name_may_have_a_domain_and_a_path()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Name = "__Secure-session";
        options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
        options.Cookie.Domain = "example.test";
        options.Cookie.Path = "/app";

        Assert.Empty(Failures(options));
    }

    [Fact]
    public void An_unprefixed_name_keeps_SameAsRequest_and_any_domain_or_path()
    {
        var options = new ClusterSessionOptions();
        options.Cookie.Domain = "example.test";
        options.Cookie.Path = "/app";

        Assert.Empty(Failures(options));
    }

    [Fact]
    public void The_header_transport_alone_does_not_check_the_cookie()
    {
        var options = new ClusterSessionOptions { Transports = SessionIdTransports.Header };
        options.Cookie.Name = "__Host-session";

        Assert.Empty(Failures(options));
    }

    [Fact]
    public void A_Host_name_from_configuration_without_SecurePolicy_fails_when_the_options_are_read()
    {
        var section = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ClusterSession:Cookie:Name"] = "__Host-session",
                ["ClusterSession:Store:Kind"] = "InMemory",
            })
            .Build()
            .GetSection("ClusterSession");
        var services = new ServiceCollection().AddLogging();
        services.AddClusterSession(section);
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ClusterSessionOptions>>().Value);

        Assert.Contains("ClusterSessionOptions.Cookie.SecurePolicy is SameAsRequest", error.Message, StringComparison.Ordinal);
    }

    private static List<string> Failures(ClusterSessionOptions options)
    {
        var result = new ClusterSessionOptionsValidator().Validate(Options.DefaultName, options);
        return result.Failed ? [.. result.Failures] : [];
    }
}
