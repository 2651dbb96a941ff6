namespace ClusterSession.Tests;

public sealed class SessionLimitsTests
{
    private readonly SessionLimits _limits = new() { MaxNameLength = 8, MaxValueBytes = 16, MaxAttributes = 3 };

    [Theory]
    [InlineData("a")]
    [InlineData("12345678")]
    [InlineData("cart:id")]
    [InlineData("é-ü ok")]
    public void Acceptable_names_pass(string name) => _limits.ValidateName(name);

    [Theory]
    [InlineData("", "empty")]
    [InlineData("123456789", "MaxNameLength")]
    [InlineData("a\nb", "control")]
    [InlineData("a\0b", "control")]
    public void Bad_names_are_rejected_with_a_clear_message(string name, string expected)
    {
        var error = Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateName(name));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0xD800)]
    [InlineData(0xDC00)]
    public void Unpaired_surrogates_are_rejected(int surrogate)
    {
        var name = "a" + (char)surrogate + "b";

        var error = Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateName(name));

        Assert.Contains("surrogate", error.Message, StringComparison.Ordinal);
        Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateName("a" + (char)surrogate));
    }

    [Fact]
    public void Paired_surrogates_are_accepted() => _limits.ValidateName("cart\U0001F6D2");

    [Fact]
    public void Values_up_to_the_limit_pass_and_larger_ones_name_the_option_but_never_the_attribute()
    {
        _limits.ValidateValue("v", new byte[16]);

        var error = Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateValue("cart", new byte[17]));

        Assert.DoesNotContain("cart", error.Message, StringComparison.Ordinal);
        Assert.Contains("17", error.Message, StringComparison.Ordinal);
        Assert.Contains("SessionLimits.MaxValueBytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_attribute_write_checks_the_name_and_a_value_but_a_removal_only_the_name()
    {
        _limits.ValidateAttribute("v", new byte[16]);
        _limits.ValidateAttribute("v", null);
        Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateAttribute("v", new byte[17]));
        Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateAttribute("", null));
    }

    [Fact]
    public void Attribute_count_over_the_limit_is_rejected()
    {
        _limits.ValidateCount(3);

        var error = Assert.Throws<SessionLimitExceededException>(() => _limits.ValidateCount(4));

        Assert.Contains("SessionLimits.MaxAttributes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Change_sets_are_validated_including_removed_names()
    {
        var id = SessionId.Create();
        _limits.Validate(new SessionChanges(id, new Dictionary<string, byte[]> { ["ok"] = new byte[16] }, ["gone"]));

        Assert.Throws<SessionLimitExceededException>(() => _limits.Validate(new SessionChanges(id, new Dictionary<string, byte[]> { ["ok"] = new byte[17] })));
        Assert.Throws<SessionLimitExceededException>(() => _limits.Validate(new SessionChanges(id, removed: ["bad\nname"])));
        var tooMany = Enumerable.Range(0, 4).ToDictionary(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => new byte[1], StringComparer.Ordinal);
        Assert.Contains("MaxAttributes", Assert.Throws<SessionLimitExceededException>(() => _limits.Validate(new SessionChanges(id, tooMany))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void New_sessions_are_validated_including_the_count()
    {
        var now = DateTimeOffset.UnixEpoch;
        var tooMany = Enumerable.Range(0, 4).ToDictionary(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => new byte[1], StringComparer.Ordinal);

        var error = Assert.Throws<SessionLimitExceededException>(
            () => _limits.Validate(SessionSnapshot.CreateNew(SessionId.Create(), now, TimeSpan.FromMinutes(1), TimeSpan.FromHours(1), tooMany)));

        Assert.Contains("MaxAttributes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_are_documented_values()
    {
        Assert.Equal(256, SessionLimits.Default.MaxNameLength);
        Assert.Equal(256 * 1024, SessionLimits.Default.MaxValueBytes);
        Assert.Equal(1000, SessionLimits.Default.MaxAttributes);
    }
}
