namespace ClusterSession;

/// <summary>The base type of every exception ClusterSession throws on purpose.</summary>
public abstract class ClusterSessionException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected ClusterSessionException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The session store could not be reached or did not answer in time. The operation may or may
/// not have been applied; the request must fail rather than continue with an empty session.
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
