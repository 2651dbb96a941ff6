using System.Text.RegularExpressions;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// What a Redis failure means for the session store: the one mapping from StackExchange.Redis exceptions to
/// <see cref="SessionStoreUnavailableException"/>, with messages that never quote a key (keys contain session ids).
/// </summary>
internal static partial class RedisFailures
{
    private const string Store = "Redis";
    private const string TimeoutSetting = "RedisSessionStoreOptions.OperationTimeout";

    /// <summary>
    /// The typed exception for <paramref name="exception"/>, or null when it is not a Redis failure (a bug:
    /// let it through). <paramref name="deadlinePassed"/>: the store's own deadline cancelled the operation.
    /// </summary>
    public static SessionStoreUnavailableException? ToUnavailable(
        Exception exception, string operation, bool deadlinePassed, TimeSpan timeout, string? keyPrefixToScrub)
    {
        if (deadlinePassed && exception is OperationCanceledException)
        {
            return SessionStoreUnavailableException.TimedOut(Store, operation, timeout, TimeoutSetting);
        }

        if (exception is not (RedisException or TimeoutException))
        {
            return null;
        }

        var inner = keyPrefixToScrub is null ? exception : Scrubbed(exception, keyPrefixToScrub);
        return exception switch
        {
            TimeoutException => SessionStoreUnavailableException.Failed(
                Store, operation, "StackExchange.Redis timed the command out", "Check that the server answers; the multiplexer's AsyncTimeout passed before the store's OperationTimeout.", inner),
            RedisConnectionException => SessionStoreUnavailableException.Refused(Store, operation, inner),
            RedisServerException server => SessionStoreUnavailableException.Failed(
                Store, operation, ErrorCode(server.Message), "Check the server: it may be loading, failing over, read-only or out of memory.", inner),
            _ => SessionStoreUnavailableException.Failed(
                Store, operation, exception.GetType().Name, "Check that Redis is running and reachable.", inner),
        };
    }

    /// <summary>
    /// A copy of a StackExchange.Redis exception whose message has keys, hash tags and anything shaped like a
    /// session id removed: for a multiplexer the application configured, which may include keys in messages.
    /// </summary>
    internal static RedisException Scrubbed(Exception exception, string keyPrefix)
    {
        var message = exception.Message;
        if (keyPrefix.Length > 0)
        {
            message = message.Replace(keyPrefix, "\u0000", StringComparison.Ordinal);
            message = KeyAfterMarker().Replace(message, "<key>");
        }

        message = HashTag().Replace(message, "{…}");
        message = IdShaped().Replace(message, "<id>");
        return new RedisException($"{exception.GetType().Name} (message scrubbed of keys): {message}");
    }

    /// <summary>The error code Redis puts first in an error reply (LOADING, READONLY, ...), never the rest of the text.</summary>
    private static string ErrorCode(string message)
    {
        var end = message.IndexOf(' ', StringComparison.Ordinal);
        var code = end < 0 ? message : message[..end];
        return code.Length is > 0 and <= 32 && code.All(char.IsAsciiLetterUpper) ? code : "error reply";
    }

    [GeneratedRegex("\u0000[^\\s,]*")]
    private static partial Regex KeyAfterMarker();

    [GeneratedRegex("\\{[^}]*\\}")]
    private static partial Regex HashTag();

    [GeneratedRegex("[A-Za-z0-9_-]{32,}")]
    private static partial Regex IdShaped();
}
