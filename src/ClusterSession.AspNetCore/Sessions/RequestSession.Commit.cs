using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Management;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// Saving: the request's changes as one change set (or its blind writes as one save, or a new session as one
/// create), and the one log entry of a store failure, whoever catches it.
/// </summary>
internal sealed partial class RequestSession
{
    private bool _failureLogged;
    private bool _signedIn;
    private SessionEventHub? _events;

    /// <summary>Whether the request failed on its session; it is answered with an error and not committed again.</summary>
    public bool HasFailed { get; private set; }

    /// <summary>Whether a commit has anything to do: a loaded session or blind writes, and no failure.</summary>
    public bool NeedsCommit => !HasFailed && IsLoaded;

    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        if (HasFailed)
        {
            return;
        }

        await EndIfRequestedAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_session is null && _blind is not null)
            {
                await CommitBlindAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (_session is { } session && session.HasChanges)
            {
                if (session.IsNew)
                {
                    await CreateAsync(session, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await SaveAsync(session, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (SessionStoreUnavailableException ex)
        {
            LogStoreFailureOnce(ex, "commit");
            throw;
        }

        if (_signedIn && _session is { IsNew: false } signedIn)
        {
            // Reported once the signed-in session is stored, so that it never comes before the session's Created.
            _signedIn = false;
            RaiseEvent(SessionLifecycleEventKind.SignedIn, null, signedIn.Id);
        }

        _idUpdate.Apply(_context, _runtime.Options, _session?.Id);
    }

    /// <summary>Queues a lifecycle event of the session with id <paramref name="id"/> (it goes out by its handle only).</summary>
    private void RaiseEvent(SessionLifecycleEventKind kind, SessionEndCause? cause, string id)
        => RaiseEventByHandle(kind, cause, SessionHandle.FromId(id));

    private void RaiseEventByHandle(SessionLifecycleEventKind kind, SessionEndCause? cause, string handle)
    {
        if ((_events ??= _context.RequestServices?.GetService(typeof(SessionEventHub)) as SessionEventHub) is { Enabled: true } events)
        {
            events.Raise(kind, cause, handle);
        }
    }

    /// <summary>Marks the request as failed on its session; with <paramref name="sessionGone"/>, also tells the client its id ended.</summary>
    public void MarkFailed(bool sessionGone)
    {
        HasFailed = true;
        if (sessionGone && !_context.Response.HasStarted)
        {
            SessionIdTransport.Expire(_context, _runtime.Options);
        }
    }

    /// <summary>
    /// Logs a store failure at Error the first time this request meets one, whether or not the application
    /// catches it; later failures of the same request are not logged again.
    /// </summary>
    public void LogStoreFailureOnce(Exception exception, string operation)
    {
        if (!_failureLogged && exception is SessionStoreUnavailableException)
        {
            _failureLogged = true;
            Log.StoreUnavailable(_runtime.Logger, exception, operation);
        }
    }

    private async ValueTask SaveAsync(TrackedSession session, CancellationToken cancellationToken)
    {
        var result = await _runtime.SaveAsync(session.GetChanges(), _deadline, cancellationToken).ConfigureAwait(false);
        if (result == SessionSaveResult.Gone)
        {
            _runtime.Metrics.Conflicts.Add(1);
            Log.SessionGone(_runtime.Logger, SessionId.ToLogTag(session.Id));
            _session = _runtime.NewSession();
            _idUpdate.Expire();
            throw new SessionGoneException(
                "The session was deleted or expired (revoked, logged out elsewhere or timed out) before this request's changes were saved; the changes were not saved.");
        }

        session.AcceptChanges();
        _runtime.Metrics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "update"));
        Log.SessionSaved(_runtime.Logger, SessionId.ToLogTag(session.Id));
    }

    /// <summary>
    /// Saves blind writes with one store call. When the incoming id is unknown, deleted or expired (Gone), the
    /// writes start a new session with a new id, exactly as a write after a miss does; the old id never comes back.
    /// </summary>
    private async ValueTask CommitBlindAsync(CancellationToken cancellationToken)
    {
        var id = _incomingId!;
        UsedStore = true;
        var result = await _runtime.SaveAsync(_blind!.ToChanges(id), _deadline, cancellationToken).ConfigureAwait(false);
        if (result == SessionSaveResult.Saved)
        {
            // Saved: a later read in this request loads the stored session, which already holds these writes.
            _blind = null;
            _runtime.Metrics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "update"));
            Log.SessionSaved(_runtime.Logger, SessionId.ToLogTag(id));
            return;
        }

        _runtime.Metrics.Misses.Add(1);
        Log.SessionMiss(_runtime.Logger, SessionId.ToLogTag(id));
        Adopt(_runtime.NewSession());
        if (_session!.HasChanges)
        {
            await CreateAsync(_session, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask CreateAsync(TrackedSession session, CancellationToken cancellationToken)
    {
        // A 192-bit random id never collides in practice; one retry keeps an astronomically unlikely collision harmless.
        for (var attempt = 0; ; attempt++)
        {
            if (await _runtime.CreateAsync(session.ToNewSnapshot(), _deadline, cancellationToken).ConfigureAwait(false))
            {
                RaiseEvent(SessionLifecycleEventKind.Created, null, session.Id);
                break;
            }

            if (attempt > 0)
            {
                throw new SessionStoreUnavailableException("The session store refused to create a new session twice; check the store.");
            }

            session.RenewId(SessionId.Create());
        }

        session.AcceptChanges();
        _idUpdate.Send();
        _runtime.Metrics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "create"));
        Log.SessionCreated(_runtime.Logger, SessionId.ToLogTag(session.Id));
    }
}
