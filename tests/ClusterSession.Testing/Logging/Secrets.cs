using Xunit;

namespace ClusterSession.Testing.Logging;

/// <summary>Asserts that session secrets (ids, attribute names and values) appear in no exception and no log entry.</summary>
public static class Secrets
{
    /// <summary>The full text of an exception as a log sink writes it: type, message, inner exceptions, stack.</summary>
    public static string TextOf(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.ToString();
    }

    /// <summary>Fails when any of <paramref name="secrets"/> occurs in any of <paramref name="texts"/>.</summary>
    public static void AssertAbsent(IEnumerable<string?> texts, params string[] secrets)
    {
        ArgumentNullException.ThrowIfNull(texts);
        foreach (var text in texts)
        {
            if (text is null)
            {
                continue;
            }

            foreach (var secret in secrets)
            {
                Assert.False(
                    text.Contains(secret, StringComparison.Ordinal),
                    $"A secret ({secret.Length} characters) leaked into: {text[..Math.Min(text.Length, 2000)]}");
            }
        }
    }

    /// <summary>Fails when any secret occurs in the exceptions or in the captured log.</summary>
    public static void AssertAbsent(ListLoggerProvider log, IEnumerable<Exception> exceptions, params string[] secrets)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(exceptions);
        AssertAbsent(exceptions.Select(TextOf).Concat(log.Entries.Select(e => e.AllText)), secrets);
    }
}
