namespace ClusterSession.Tests;

public sealed class SessionIdTests
{
    [Fact]
    public void Created_ids_are_32_base64url_characters()
    {
        for (var i = 0; i < 1000; i++)
        {
            var id = SessionId.Create();
            Assert.Equal(SessionId.Length, id.Length);
            Assert.All(id, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '-' or '_', $"'{c}' is not base64url."));
            Assert.True(SessionId.IsWellFormed(id));
        }
    }

    [Fact]
    public void Ids_carry_at_least_128_bits()
    {
        Assert.True(SessionId.ByteLength * 8 >= 128);
        Assert.Equal(SessionId.Length, (SessionId.ByteLength * 4 + 2) / 3);
    }

    [Fact]
    public void One_hundred_thousand_ids_are_unique()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 100_000; i++)
        {
            Assert.True(ids.Add(SessionId.Create()));
        }
    }

    public static TheoryData<string?> BadIds => new()
    {
        null,
        "",
        " ",
        new string('A', SessionId.Length - 1),
        new string('A', SessionId.Length + 1),
        new string('A', 100_000),
        new string('A', SessionId.Length - 1) + "+",
        new string('A', SessionId.Length - 1) + "/",
        new string('A', SessionId.Length - 1) + "=",
        new string('A', SessionId.Length - 1) + " ",
        new string('A', SessionId.Length - 1) + "\0",
        new string('A', SessionId.Length - 1) + "\n",
        new string('A', SessionId.Length - 1) + "é",
        new string('A', SessionId.Length - 1) + "\uFF21",
        new string('A', SessionId.Length - 2) + "\U0001F600",
        new string('A', SessionId.Length - 1) + "\u0661",
        " " + new string('A', SessionId.Length - 1),
        "../../../../../../../etc/passwd0",
    };

    [Theory]
    [MemberData(nameof(BadIds))]
    public void Malformed_ids_are_rejected(string? candidate)
    {
        Assert.False(SessionId.IsWellFormed(candidate));
        Assert.False(SessionId.IsWellFormed((candidate ?? "").AsSpan()));
    }

    [Fact]
    public void Throw_if_malformed_names_the_rule_but_not_the_value()
    {
        var secret = new string('x', 31) + "!";

        var error = Assert.Throws<ArgumentException>(() => SessionId.ThrowIfMalformed(secret));

        Assert.DoesNotContain(secret, error.Message, StringComparison.Ordinal);
        Assert.Contains("SessionId.Create()", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Log_tag_is_short_stable_and_not_the_id()
    {
        var id = SessionId.Create();

        var tag = SessionId.ToLogTag(id);

        Assert.Equal(8, tag.Length);
        Assert.Equal(tag, SessionId.ToLogTag(id));
        Assert.DoesNotContain(tag, id, StringComparison.Ordinal);
        Assert.NotEqual(tag, SessionId.ToLogTag(SessionId.Create()));
    }
}
