using System.Diagnostics;
using System.Diagnostics.Metrics;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Protection;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Resilience;

/// <summary>
/// The per-application part of ClusterSession: options, store, clock, logger, and every store call
/// wrapped with the one store deadline of the request path, the circuit breaker (fed with each call's outcome
/// as classified here), metrics and a trace span.
/// </summary>
internal sealed class SessionRuntime : IDisposable
{
    private readonly string _storeName;

    /// <summary>The semantic-convention attributes that describe the store: db.system.name, server.address, server.port.</summary>
    private readonly KeyValuePair<string, object?>[] _storeTags;

    /// <summary>What the store calls go to: the store behind the value decryption (and, when on, encryption).</summary>
    private readonly ISessionStore _calls;

    /// <param name="options">The options.</param>
    /// <param name="store">The configured store.</param>
    /// <param name="time">The clock.</param>
    /// <param name="loggerFactory">The loggers.</param>
    /// <param name="dataProtection">
    /// The application's Data Protection, resolved at the first encrypted value; null (or a function returning null)
    /// when the application has none, so encrypted values read as unreadable. Required with <see cref="ClusterSessionOptions.EncryptValues"/>.
    /// </param>
    /// <param name="meterFactory">The application's meter factory; null (a runtime built without DI): the runtime owns its meter.</param>
    public SessionRuntime(
        IOptions<ClusterSessionOptions> options, ISessionStore store, TimeProvider time, ILoggerFactory loggerFactory, Func<IDataProtectionProvider?>? dataProtection = null, IMeterFactory? meterFactory = null)
    {
        Options = options.Value;
        Store = store;
        _calls = new ValueProtectingSessionStore(store, new AttributeValueProtector(dataProtection ?? (static () => null)), Options.EncryptValues);
        AttributeLimits = Options.EncryptValues
            ? new SessionLimits
            {
                MaxNameLength = Options.Limits.MaxNameLength,
                MaxAttributes = Options.Limits.MaxAttributes,
                MaxValueBytes = Options.Limits.MaxValueBytes - AttributeValueProtector.MaxOverhead,
            }
            : Options.Limits;
        Time = time;
        Logger = loggerFactory.CreateLogger("ClusterSession.AspNetCore");
        Metrics = new SessionMetrics(meterFactory);
        Circuit = new StoreCircuitBreaker(Options.CircuitBreaker, Options.StoreTimeout, time, Logger, Metrics);
        _storeTags = StoreTags(store);
        var storeType = store.GetType().Name;
        _storeName = storeType.EndsWith("SessionStore", StringComparison.Ordinal) && storeType.Length > "SessionStore".Length
            ? storeType[..^"SessionStore".Length]
            : storeType;
    }

    public ClusterSessionOptions Options { get; }

    /// <summary>The configured store, without the value encryption layer (its own interfaces, such as health reporting, are on it).</summary>
    public ISessionStore Store { get; }

    /// <summary>
    /// Whether nodes of the previous release may still read what this node writes (<see cref="ISessionStoreUpgrade"/>): then
    /// session values they read are written in their form too.
    /// </summary>
    public bool WritesPreviousLayout => Store is ISessionStoreUpgrade { WritesPreviousLayout: true };

    /// <summary>
    /// The limits a request's writes are checked against: <see cref="ClusterSessionOptions.Limits"/>, except that with
    /// <see cref="ClusterSessionOptions.EncryptValues"/> a value may be <see cref="AttributeValueProtector.MaxOverhead"/>
    /// bytes smaller, so that its encrypted form still fits the store's limit.
    /// </summary>
    public SessionLimits AttributeLimits { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    /// <summary>Fails calls fast while the store is known to be down; fed with the outcome of every call below.</summary>
    public StoreCircuitBreaker Circuit { get; }

    /// <summary>This application's instruments.</summary>
    public SessionMetrics Metrics { get; }

    public void Dispose()
    {
        Circuit.Dispose();
        Metrics.Dispose();
    }

    public TrackedSession NewSession()
        => TrackedSession.CreateNew(SessionId.Create(), Time.GetUtcNow(), Options.IdleTimeout, Options.AbsoluteLifetime, AttributeLimits);

    public ValueTask<SessionSnapshot?> LoadAsync(string id, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("load", id, static (store, id, ct) => store.LoadAsync(id, ct), deadline, cancellationToken);

    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, RequestDeadline? deadline, CancellationToken cancellationToken)
        => options == SessionLoadOptions.None
            ? LoadAsync(id, deadline, cancellationToken)
            : CallAsync("load", (id, options), static (store, s, ct) => store.LoadAsync(s.id, s.options, ct), deadline, cancellationToken);

    public ValueTask<bool> CreateAsync(SessionSnapshot snapshot, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("create", snapshot, static (store, s, ct) => store.CreateAsync(s, ct), deadline, cancellationToken);

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("save", changes, static (store, c, ct) => store.SaveAsync(c, ct), deadline, cancellationToken);

    public ValueTask<bool> DeleteAsync(string id, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("delete", id, static (store, id, ct) => store.DeleteAsync(id, ct), deadline, cancellationToken);

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("change_id", (oldId, newId), static (store, ids, ct) => store.ChangeIdAsync(ids.oldId, ids.newId, ct), deadline, cancellationToken);

    /// <summary>The health check's store call: a load of an id that does not exist, which creates and writes nothing.</summary>
    public ValueTask<SessionSnapshot?> ProbeAsync(RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("health_check", SessionId.Create(), static (store, id, ct) => store.LoadAsync(id, ct), deadline, cancellationToken);

    /// <summary>
    /// What the store says about its health (<see cref="ISessionStoreHealthReporter"/>), through the same deadline,
    /// circuit breaker and metrics as every store call.
    /// </summary>
    public ValueTask<SessionStoreHealth> ReportHealthAsync(ISessionStoreHealthReporter reporter, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("health_report", reporter, static (_, r, ct) => r.GetHealthAsync(ct), deadline, cancellationToken);

    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("delete_by_handle", (principal, handle), static (store, s, ct) => store.DeleteByHandleAsync(s.principal, s.handle, ct), deadline, cancellationToken);

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("find_by_principal", principal, static (store, p, ct) => store.FindByPrincipalAsync(p, ct), deadline, cancellationToken);

    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync("admit", (id, principal, maxSessions, policy), static (store, a, ct) => store.AdmitAsync(a.id, a.principal, a.maxSessions, a.policy, ct), deadline, cancellationToken);

    public ValueTask<byte[]?> UpdateAttributeAsync(string id, string name, byte[]? current, Func<byte[]?, byte[]?> update, RequestDeadline? deadline, CancellationToken cancellationToken)
        => CallAsync(
            "update_attribute",
            (id, name, current, update),
            static (store, a, ct) => store.UpdateAttributeAsync(a.id, a.name, a.current, a.update, cancellationToken: ct),
            deadline,
            cancellationToken);

    /// <summary>
    /// Runs one store operation with metrics, a trace span and a deadline: a linked <see cref="CancellationTokenSource"/>
    /// that cancels the store call when the request's one store deadline passes (<see cref="RequestDeadline"/>: all
    /// store calls of a request share <see cref="ClusterSessionOptions.StoreTimeout"/>), or, for work of its own such
    /// as a touch after the response (<paramref name="deadline"/> null), after a whole StoreTimeout. A store's own
    /// deadline, such as the Redis store's OperationTimeout, may end it sooner; nothing waits longer. A cancelled call
    /// is cancelled in the store, not abandoned. A timeout or an unexpected exception becomes
    /// <see cref="SessionStoreUnavailableException"/>, so callers handle exactly one kind of outage; so does a call
    /// made after its request's deadline passed, which fails at once without reaching the store or feeding the circuit
    /// breaker (while the circuit is open, with the breaker's fast failure and its retry hint).
    /// </summary>
    private ValueTask<TResult> CallAsync<TState, TResult>(
        string operation,
        TState state,
        Func<ISessionStore, TState, CancellationToken, ValueTask<TResult>> call,
        RequestDeadline? deadline,
        CancellationToken cancellationToken)
    {
        if (deadline is { HasPassed: true } && !cancellationToken.IsCancellationRequested)
        {
            // Not a store failure (the store was not asked), so the breaker hears nothing of it. While the circuit is
            // open the call fails as every call then does: fast, with the breaker's retry hint, counted as a fast failure.
            try
            {
                Circuit.ThrowIfOpen(operation);
            }
            catch (SessionStoreUnavailableException open)
            {
                return ValueTask.FromException<TResult>(open);
            }

            return ValueTask.FromException<TResult>(DeadlinePassed(operation));
        }

        var permit = Circuit.Enter(operation);
        var activity = SessionDiagnostics.ActivitySource.HasListeners()
            ? StartActivity(operation)
            : null;
        var started = Stopwatch.GetTimestamp();
        CancellationTokenSource linked;
        if (deadline is null)
        {
            linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            linked.CancelAfter(Options.StoreTimeout);
        }
        else
        {
            linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Start());
        }

        ValueTask<TResult> pending;
        try
        {
            pending = call(_calls, state, linked.Token);
        }
        catch (Exception ex)
        {
            var translated = Translate(ex, operation, TimedOut(linked, cancellationToken));
            linked.Dispose();
            Complete(activity, operation, started, permit, translated);
            if (ReferenceEquals(translated, ex))
            {
                throw;
            }

            throw translated;
        }

        if (pending.IsCompletedSuccessfully)
        {
            var result = pending.Result;
            linked.Dispose();
            Complete(activity, operation, started, permit, error: null);
            return new ValueTask<TResult>(result);
        }

        return AwaitSlowAsync(pending, operation, activity, started, permit, linked, cancellationToken);
    }

    /// <summary>The error of a store call made after its request's one store deadline passed: the same typed outage as a timeout.</summary>
    private SessionStoreUnavailableException DeadlinePassed(string operation)
        => new(string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"The {_storeName} session store calls of this request used up its store deadline of {Options.StoreTimeout.TotalMilliseconds:0} ms (ClusterSessionOptions.StoreTimeout, one deadline for all store calls of a request); the {operation} was not sent. Check that the store is running and not overloaded, or raise StoreTimeout."));

    private async ValueTask<TResult> AwaitSlowAsync<TResult>(
        ValueTask<TResult> pending, string operation, Activity? activity, long started, CircuitPermit permit, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            return await pending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = Translate(ex, operation, TimedOut(deadline, cancellationToken));
            if (ReferenceEquals(error, ex))
            {
                throw;
            }

            throw error;
        }
        finally
        {
            deadline.Dispose();
            Complete(activity, operation, started, permit, error);
        }
    }

    private static bool TimedOut(CancellationTokenSource deadline, CancellationToken cancellationToken)
        => deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested;

    /// <summary>
    /// The store's typed failures, the caller's cancellation and bad input stay as they are; a cancellation by
    /// the deadline is a timeout; anything else a store throws is an outage. Never copies a message a store's
    /// driver wrote (it may quote a key, and so a session id).
    /// </summary>
    private Exception Translate(Exception exception, string operation, bool timedOut) => exception switch
    {
        OperationCanceledException when timedOut => SessionStoreUnavailableException.TimedOut(_storeName, operation, Options.StoreTimeout, "ClusterSessionOptions.StoreTimeout", exception),
        ClusterSessionException or OperationCanceledException or ArgumentException or NotSupportedException => exception,
        _ => SessionStoreUnavailableException.Failed(_storeName, operation, exception.GetType().Name, "The store threw an exception it does not classify; see the inner exception.", exception),
    };

    private void Complete(Activity? activity, string operation, long started, CircuitPermit permit, Exception? error)
    {
        Circuit.Report(permit, error);
        var failed = error is SessionStoreUnavailableException;
        var errorType = error is null ? null : ErrorType(error);
        var tags = new TagList(_storeTags)
        {
            { SessionDiagnostics.OperationTag, operation },
            { SessionDiagnostics.DbOperationNameTag, operation },
        };
        if (errorType is not null)
        {
            tags.Add(SessionDiagnostics.ErrorTypeTag, errorType);
        }

        Metrics.StoreDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        if (failed)
        {
            Metrics.Failures.Add(1, tags);
        }

        if (activity is not null)
        {
            if (errorType is not null)
            {
                activity.SetTag(SessionDiagnostics.ErrorTypeTag, errorType);
            }

            if (failed)
            {
                activity.SetStatus(ActivityStatusCode.Error);
            }

            activity.Dispose();
        }
    }

    private Activity? StartActivity(string operation)
    {
        var tags = new TagList(_storeTags)
        {
            { SessionDiagnostics.DbOperationNameTag, operation },
        };
        return SessionDiagnostics.ActivitySource.StartActivity(ActivityKind.Client, tags: tags, name: "session " + operation);
    }

    /// <summary>
    /// The <c>error.type</c> of a failed call: <c>timeout</c> when it ran out of time (the request's deadline or the
    /// store's own), the full name of the driver's exception behind an outage when there is one, <c>unavailable</c> for an
    /// outage the store reported without one, the failure (<c>gone</c>, <c>conflict</c>, <c>limit_exceeded</c>)
    /// or exception type of any other failure.
    /// </summary>
    private static string ErrorType(Exception error) => error switch
    {
        SessionStoreUnavailableException { InnerException: OperationCanceledException or TimeoutException } => "timeout",
        SessionStoreUnavailableException { InnerException: { } inner } => inner.GetType().FullName ?? inner.GetType().Name,
        SessionStoreUnavailableException => "unavailable",
        SessionGoneException => "gone",
        SessionConflictException => "conflict",
        SessionLimitExceededException or SessionCapExceededException => "limit_exceeded",
        _ => error.GetType().FullName ?? error.GetType().Name,
    };

    /// <summary>The attributes of <see cref="IStoreTelemetry"/>, or <c>db.system.name=other</c> for a store that does not tell.</summary>
    private static KeyValuePair<string, object?>[] StoreTags(ISessionStore store)
    {
        if (store is not IStoreTelemetry telemetry)
        {
            return [new(SessionDiagnostics.DbSystemNameTag, "other")];
        }

        var tags = new List<KeyValuePair<string, object?>>(3) { new(SessionDiagnostics.DbSystemNameTag, telemetry.DbSystemName) };
        if (telemetry.ServerAddress is { } address)
        {
            tags.Add(new(SessionDiagnostics.ServerAddressTag, address));
            if (telemetry.ServerPort is { } port)
            {
                tags.Add(new(SessionDiagnostics.ServerPortTag, port));
            }
        }

        return [.. tags];
    }
}
