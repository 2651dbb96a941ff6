using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// The per-application part of ClusterSession: options, store, clock, logger, and every store call
/// wrapped with a timeout, metrics and a trace span.
/// </summary>
internal sealed class SessionRuntime
{
    public SessionRuntime(IOptions<ClusterSessionOptions> options, ISessionStore store, TimeProvider time, ILoggerFactory loggerFactory)
    {
        Options = options.Value;
        Store = store;
        Time = time;
        Logger = loggerFactory.CreateLogger("ClusterSession.AspNetCore");
    }

    public ClusterSessionOptions Options { get; }

    public ISessionStore Store { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

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

    public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken)
        => CallAsync("find_by_principal", principal, static (store, p, ct) => store.FindByPrincipalAsync(p, ct), cancellationToken);

    public ValueTask<byte[]?> UpdateAttributeAsync(string id, string name, byte[]? current, Func<byte[]?, byte[]?> update, CancellationToken cancellationToken)
        => CallAsync(
            "update_attribute",
            (id, name, current, update),
            static (store, a, ct) => store.UpdateAttributeAsync(a.id, a.name, a.current, a.update, cancellationToken: ct),
            cancellationToken);

    /// <summary>
    /// Runs one store operation with the configured timeout; a timeout or an unexpected exception becomes
    /// <see cref="SessionStoreUnavailableException"/>, so callers handle exactly one kind of outage.
    /// </summary>
    private async ValueTask<TResult> CallAsync<TState, TResult>(
        string operation,
        TState state,
        Func<ISessionStore, TState, CancellationToken, ValueTask<TResult>> call,
        CancellationToken cancellationToken)
    {
        using var activity = SessionDiagnostics.ActivitySource.HasListeners()
            ? SessionDiagnostics.ActivitySource.StartActivity("session " + operation, ActivityKind.Client)
            : null;
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Options.StoreTimeout);
        try
        {
            return await call(Store, state, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            Fail(activity, operation);
            throw new SessionStoreUnavailableException(
                $"The session store did not answer a {operation} within {Options.StoreTimeout.TotalSeconds:0.###} s: check the store, or raise ClusterSessionOptions.StoreTimeout.", ex);
        }
        catch (SessionStoreUnavailableException)
        {
            Fail(activity, operation);
            throw;
        }
        catch (Exception ex) when (ex is not ClusterSessionException and not OperationCanceledException and not ArgumentException)
        {
            Fail(activity, operation);
            throw new SessionStoreUnavailableException($"The session store failed during a {operation}: {ex.Message}", ex);
        }
        finally
        {
            SessionDiagnostics.StoreDuration.Record(
                Stopwatch.GetElapsedTime(started).TotalSeconds,
                new KeyValuePair<string, object?>("cluster_session.operation", operation));
        }
    }

    private static void Fail(Activity? activity, string operation)
    {
        activity?.SetStatus(ActivityStatusCode.Error);
        SessionDiagnostics.Failures.Add(1, new KeyValuePair<string, object?>("cluster_session.operation", operation));
    }
}
