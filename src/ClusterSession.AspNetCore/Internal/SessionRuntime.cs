using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// The per-application part of ClusterSession: options, store, clock, logger, and every store call
/// wrapped with a timeout, the circuit breaker (fed with each call's outcome as classified here), metrics
/// and a trace span.
/// </summary>
internal sealed class SessionRuntime : IDisposable
{
    public SessionRuntime(IOptions<ClusterSessionOptions> options, ISessionStore store, TimeProvider time, ILoggerFactory loggerFactory)
    {
        Options = options.Value;
        Store = store;
        Time = time;
        Logger = loggerFactory.CreateLogger("ClusterSession.AspNetCore");
        Circuit = new StoreCircuitBreaker(Options.CircuitBreaker, Options.StoreTimeout, time, Logger);
    }

    public ClusterSessionOptions Options { get; }

    public ISessionStore Store { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    /// <summary>Fails calls fast while the store is known to be down; fed with the outcome of every call below.</summary>
    public StoreCircuitBreaker Circuit { get; }

    public void Dispose() => Circuit.Dispose();

    public TrackedSession NewSession()
        => TrackedSession.CreateNew(SessionId.Create(), Time.GetUtcNow(), Options.IdleTimeout, Options.AbsoluteLifetime, Options.Limits);

    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken)
        => CallAsync("load", id, static (store, id, ct) => store.LoadAsync(id, ct), cancellationToken);

    public ValueTask<bool> CreateAsync(SessionSnapshot snapshot, CancellationToken cancellationToken)
        => CallAsync("create", snapshot, static (store, s, ct) => store.CreateAsync(s, ct), cancellationToken);

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken)
        => CallAsync("save", changes, static (store, c, ct) => store.SaveAsync(c, ct), cancellationToken);

    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken)
        => CallAsync("delete", id, static (store, id, ct) => store.DeleteAsync(id, ct), cancellationToken);

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken)
        => CallAsync("change_id", (oldId, newId), static (store, ids, ct) => store.ChangeIdAsync(ids.oldId, ids.newId, ct), cancellationToken);

    /// <summary>The health check's store call: a load of an id that does not exist, which creates and writes nothing.</summary>
    public ValueTask<SessionSnapshot?> ProbeAsync(CancellationToken cancellationToken)
        => CallAsync("health_check", SessionId.Create(), static (store, id, ct) => store.LoadAsync(id, ct), cancellationToken);

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken)
        => CallAsync("find_by_principal", principal, static (store, p, ct) => store.FindByPrincipalAsync(p, ct), cancellationToken);

    public ValueTask<byte[]?> UpdateAttributeAsync(string id, string name, byte[]? current, Func<byte[]?, byte[]?> update, CancellationToken cancellationToken)
        => CallAsync(
            "update_attribute",
            (id, name, current, update),
            static (store, a, ct) => store.UpdateAttributeAsync(a.id, a.name, a.current, a.update, cancellationToken: ct),
            cancellationToken);

    /// <summary>
    /// Runs one store operation with the configured timeout, metrics and a trace span. A timeout or an
    /// unexpected exception becomes <see cref="SessionStoreUnavailableException"/>, so callers handle exactly
    /// one kind of outage. A store that answers synchronously (in-memory) costs no extra allocation.
    /// </summary>
    private ValueTask<TResult> CallAsync<TState, TResult>(
        string operation,
        TState state,
        Func<ISessionStore, TState, CancellationToken, ValueTask<TResult>> call,
        CancellationToken cancellationToken)
    {
        var permit = Circuit.Enter(operation);
        var activity = SessionDiagnostics.ActivitySource.HasListeners()
            ? SessionDiagnostics.ActivitySource.StartActivity("session " + operation, ActivityKind.Client)
            : null;
        var started = Stopwatch.GetTimestamp();
        ValueTask<TResult> pending;
        try
        {
            pending = call(Store, state, cancellationToken);
        }
        catch (Exception ex)
        {
            var translated = Translate(ex, operation);
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
            Complete(activity, operation, started, permit, error: null);
            return new ValueTask<TResult>(result);
        }

        return AwaitSlowAsync(pending.AsTask(), operation, activity, started, permit, cancellationToken);
    }

    private async ValueTask<TResult> AwaitSlowAsync<TResult>(Task<TResult> pending, string operation, Activity? activity, long started, CircuitPermit permit, CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            return await pending.WaitAsync(Options.StoreTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            // The abandoned call may still fail later; observe it so it never surfaces as an unobserved exception.
            _ = pending.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            error = new SessionStoreUnavailableException(
                $"The session store did not answer a {operation} within {Options.StoreTimeout.TotalSeconds:0.###} s: check the store, or raise ClusterSessionOptions.StoreTimeout.", ex);
            throw error;
        }
        catch (Exception ex)
        {
            error = Translate(ex, operation);
            if (ReferenceEquals(error, ex))
            {
                throw;
            }

            throw error;
        }
        finally
        {
            Complete(activity, operation, started, permit, error);
        }
    }

    /// <summary>Store outages stay as they are; anything a store throws that is not ours or the caller's becomes an outage.</summary>
    private static Exception Translate(Exception exception, string operation)
        => exception is ClusterSessionException or OperationCanceledException or ArgumentException
            ? exception
            : new SessionStoreUnavailableException($"The session store failed during a {operation}: {exception.Message}", exception);

    private void Complete(Activity? activity, string operation, long started, CircuitPermit permit, Exception? error)
    {
        Circuit.Report(permit, error);
        var failed = error is SessionStoreUnavailableException;
        var tag = new KeyValuePair<string, object?>(SessionDiagnostics.OperationTag, operation);
        SessionDiagnostics.StoreDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tag);
        if (failed)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            SessionDiagnostics.Failures.Add(1, tag);
        }

        activity?.Dispose();
    }
}
