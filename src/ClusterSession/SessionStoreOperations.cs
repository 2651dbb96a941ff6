using System.Diagnostics;

namespace ClusterSession;

/// <summary>
/// What a store's driver failures mean: the one part of <see cref="SessionStoreOperations"/> each store supplies.
/// </summary>
/// <remarks>
/// Return <see cref="SessionStoreUnavailableException"/> (built with <see cref="SessionStoreUnavailableException.Refused"/>,
/// <see cref="SessionStoreUnavailableException.Failed"/> or <see cref="SessionStoreUnavailableException.TimedOut"/>, so
/// every store says the same thing the same way) for every way the store can be down, slow or refusing; another
/// exception with a message that says what to fix for a misconfiguration (a missing table); null for anything that is
/// not a store failure (ClusterSession's own exceptions, bad input, a bug), which then goes through unchanged. Never
/// copy a driver's message that may quote a key or a row: keys contain session ids.
/// </remarks>
public interface IStoreFailureClassifier
{
    /// <summary>The exception to throw instead of <paramref name="exception"/>, or null to let it through unchanged.</summary>
    /// <param name="exception">What the operation threw. A cancellation by the operation's own deadline never gets here: it is a timeout.</param>
    /// <param name="operation">The operation, e.g. "load", for the message.</param>
    /// <param name="elapsed">How long the operation ran, retries included.</param>
    Exception? Classify(Exception exception, string operation, TimeSpan elapsed);
}

/// <summary>
/// Runs a session store's operations: one deadline per operation, abandoned driver tasks observed, failures translated
/// once through the store's <see cref="IStoreFailureClassifier"/>. This is where a new store plugs in: each public
/// operation of an <see cref="ISessionStore"/> runs its round trips inside <see cref="RunAsync"/>, and the store supplies
/// only what its driver's failures mean.
/// </summary>
/// <remarks>
/// Hosts (the ASP.NET Core runtime) add their own layer above the store: the request's deadline, the circuit breaker
/// and metrics. This layer is the store's own: its deadline (<see cref="Timeout"/>) bounds one operation, whoever calls it.
/// </remarks>
public sealed class SessionStoreOperations
{
    private readonly string _store;
    private readonly string _timeoutSetting;
    private readonly IStoreFailureClassifier _classifier;

    /// <summary>Creates the runner of one store's operations.</summary>
    /// <param name="store">The store's name in messages, e.g. "Redis".</param>
    /// <param name="timeout">The deadline of one operation, every round trip and retry included.</param>
    /// <param name="timeoutSetting">The option that sets <paramref name="timeout"/>, named in the timeout's message, e.g. "RedisSessionStoreOptions.OperationTimeout".</param>
    /// <param name="classifier">What the store's driver failures mean.</param>
    public SessionStoreOperations(string store, TimeSpan timeout, string timeoutSetting, IStoreFailureClassifier classifier)
    {
        ArgumentException.ThrowIfNullOrEmpty(store);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        ArgumentException.ThrowIfNullOrEmpty(timeoutSetting);
        ArgumentNullException.ThrowIfNull(classifier);
        _store = store;
        Timeout = timeout;
        _timeoutSetting = timeoutSetting;
        _classifier = classifier;
    }

    /// <summary>The deadline of one operation.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>
    /// Runs one store operation under the deadline: <paramref name="body"/> gets a token that fires when the deadline
    /// passes or the caller cancels, and the caller stops waiting then even if the driver does not. The caller's own
    /// cancellation is an <see cref="OperationCanceledException"/> for its token, whatever the driver threw; the deadline
    /// is <see cref="SessionStoreUnavailableException.TimedOut"/>; any other exception goes through the store's
    /// <see cref="IStoreFailureClassifier"/>.
    /// </summary>
    /// <typeparam name="TState">What the body needs, passed without a closure.</typeparam>
    /// <typeparam name="TResult">The operation's result.</typeparam>
    /// <param name="operation">The operation, e.g. "load", for messages.</param>
    /// <param name="state">Passed to <paramref name="body"/>.</param>
    /// <param name="body">The operation's round trips.</param>
    /// <param name="cancellationToken">The caller's cancellation.</param>
    public async ValueTask<TResult> RunAsync<TState, TResult>(
        string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        var started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        try
        {
            return await WithinAsync(body(state, deadline.Token), deadline.Token).ConfigureAwait(false);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up: whatever the driver's last failure was, the caller sees its own cancellation.
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex) when (Translate(ex, operation, deadline.IsCancellationRequested, Stopwatch.GetElapsedTime(started)) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>
    /// Waits for <paramref name="pending"/> until <paramref name="token"/> fires. A driver that cannot recall a call once
    /// sent (StackExchange.Redis) or that ignores the token in a phase (Npgsql's connection handshake) ends it later by its
    /// own timeout; the abandoned task's failure is observed (<see cref="ObserveAbandoned"/>), never left unobserved.
    /// </summary>
    /// <typeparam name="TResult">The call's result.</typeparam>
    /// <param name="pending">The driver's call.</param>
    /// <param name="token">When to stop waiting.</param>
    public static async Task<TResult> WithinAsync<TResult>(Task<TResult> pending, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(pending);
        try
        {
            return await pending.WaitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!pending.IsCompleted)
        {
            ObserveAbandoned(pending);
            throw;
        }
    }

    /// <summary>Observes the failure of a task no one awaits any more, so that it never surfaces as an unobserved task exception.</summary>
    /// <param name="abandoned">The task.</param>
    public static void ObserveAbandoned(Task abandoned)
    {
        ArgumentNullException.ThrowIfNull(abandoned);
        _ = abandoned.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    private Exception? Translate(Exception exception, string operation, bool deadlinePassed, TimeSpan elapsed)
        => deadlinePassed && exception is OperationCanceledException
            ? SessionStoreUnavailableException.TimedOut(_store, operation, Timeout, _timeoutSetting)
            : _classifier.Classify(exception, operation, elapsed);
}
