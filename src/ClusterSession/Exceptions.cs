using System.Globalization;

namespace ClusterSession;

/// <summary>
/// The base type of every exception ClusterSession throws on purpose. Messages never contain a session id,
/// an attribute name or a value: they may be logged.
/// </summary>
public abstract class ClusterSessionException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected ClusterSessionException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The session store could not be reached, refused, failed or did not answer in time. The operation may or
/// may not have been applied; the request must fail rather than continue with an empty session. Stores build
/// it with <see cref="TimedOut"/>, <see cref="Refused"/> or <see cref="Failed"/>, so every store says the same
/// thing the same way.
/// </summary>
public sealed class SessionStoreUnavailableException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>
    /// When known, how long the caller should wait before trying again: set when the call was refused at
    /// once because the store is known to be down (an open circuit), null otherwise. Hosts send it to
    /// clients, e.g. as an HTTP <c>Retry-After</c> header.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The operation ran out of time and was cancelled.</summary>
    /// <param name="store">The store, e.g. "Redis".</param>
    /// <param name="operation">The operation, e.g. "load".</param>
    /// <param name="timeout">The deadline that passed.</param>
    /// <param name="setting">The option that sets it, e.g. "RedisSessionStoreOptions.OperationTimeout".</param>
    /// <param name="innerException">The driver's exception, if any; it must not carry a session id.</param>
    public static SessionStoreUnavailableException TimedOut(string store, string operation, TimeSpan timeout, string setting, Exception? innerException = null)
        => new(
            string.Create(
                CultureInfo.InvariantCulture,
                $"The {store} session store did not complete a {operation} within {timeout.TotalMilliseconds:0} ms; the call was cancelled. Check that the store is running and not overloaded, or raise {setting}."),
            innerException);

    /// <summary>The store could not be reached or dropped the connection.</summary>
    /// <param name="store">The store, e.g. "Redis".</param>
    /// <param name="operation">The operation, e.g. "load".</param>
    /// <param name="innerException">The driver's exception, if any; it must not carry a session id.</param>
    public static SessionStoreUnavailableException Refused(string store, string operation, Exception? innerException = null)
        => new(
            $"The {store} session store could not be reached during a {operation} (connection refused or lost). Check that it is running and reachable.",
            innerException);

    /// <summary>The store answered with an error that means it cannot serve now (loading, failing over, out of resources).</summary>
    /// <param name="store">The store, e.g. "Redis".</param>
    /// <param name="operation">The operation, e.g. "load".</param>
    /// <param name="reason">The server's error code or a short safe description, e.g. "LOADING" or "SQLSTATE 57P01"; never a driver message that may quote a key.</param>
    /// <param name="advice">What to check, as a sentence.</param>
    /// <param name="innerException">The driver's exception, if any; it must not carry a session id.</param>
    public static SessionStoreUnavailableException Failed(string store, string operation, string reason, string advice, Exception? innerException = null)
        => new($"The {store} session store failed a {operation} ({reason}). {advice}", innerException);
}

/// <summary>An attribute name, value size or attribute count is over a configured limit.</summary>
public sealed class SessionLimitExceededException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionLimitExceededException(string message)
        : base(message)
    {
    }
}

/// <summary>The session was deleted or expired while the caller still held a copy of it.</summary>
public sealed class SessionGoneException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionGoneException(string message)
        : base(message)
    {
    }
}

/// <summary>An atomic update did not succeed within its bounded number of compare-and-set attempts.</summary>
public sealed class SessionConflictException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionConflictException(string message)
        : base(message)
    {
    }
}
