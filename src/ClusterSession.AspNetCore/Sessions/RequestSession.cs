using System.Diagnostics.CodeAnalysis;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// The session of one request, as the application sees it (<see cref="IClusterSession"/>, and through
/// <see cref="SessionAdapter"/> <c>ISession</c>); also a request feature, found by <see cref="Get"/>.
/// This file is the façade; loading is in RequestSession.Loading.cs, saving in RequestSession.Commit.cs,
/// write-only requests in <see cref="BlindWrites"/>, the id on the wire in <see cref="PendingIdUpdate"/>.
/// </summary>
internal sealed partial class RequestSession : IClusterSession, IDisposable
{
    private readonly HttpContext _context;
    private readonly SessionRuntime _runtime;
    private readonly string? _incomingId;
    private readonly PendingIdUpdate _idUpdate = new();
    private readonly RequestDeadline _deadline;
    private TrackedSession? _session;
    private BlindWrites? _blind;

    public RequestSession(HttpContext context, SessionRuntime runtime, string? incomingId)
    {
        _context = context;
        _runtime = runtime;
        _incomingId = incomingId;
        _deadline = new RequestDeadline(runtime.Options.StoreTimeout);
    }

    public HttpContext Context => _context;

    /// <summary>The request's one store deadline, shared by all its store calls.</summary>
    public RequestDeadline Deadline => _deadline;

    /// <summary>Disposes the deadline's timer; the middleware registers this with the response (<c>RegisterForDispose</c>).</summary>
    public void Dispose() => _deadline.Dispose();

    public ClusterSessionOptions Options => _runtime.Options;

    /// <inheritdoc cref="SessionRuntime.WritesPreviousLayout"/>
    public bool WritesPreviousLayout => _runtime.WritesPreviousLayout;

    /// <summary>The well-formed id the request carried, or null.</summary>
    public string? IncomingId => _incomingId;

    /// <summary>The id of the loaded session, or null when it was not loaded or is new and unsaved.</summary>
    public string? StoredIdOrNull => _session is { IsNew: false } s ? s.Id : null;

    /// <summary>The idle timeout of the loaded, stored session, or null.</summary>
    public TimeSpan? StoredIdleTimeoutOrNull => _session is { IsNew: false } s ? s.IdleTimeout : null;

    public string Id => Session.Id;

    public bool IsNew => Session.IsNew;

    public DateTimeOffset CreatedAt => Session.Snapshot.CreatedAt;

    public DateTimeOffset LastAccessedAt => Session.Snapshot.LastAccessedAt;

    public TimeSpan IdleTimeout
    {
        get => Session.IdleTimeout;
        set
        {
            ThrowIfDoesNotExtend();
            Session.SetIdleTimeout(value);
        }
    }

    public DateTimeOffset AbsoluteExpiresAt => Session.Snapshot.AbsoluteExpiresAt;

    public string? Principal
    {
        get => Session.Principal;
        set
        {
            ThrowIfDoesNotExtend();
            var session = Session;
            ThrowIfCannotEstablish();
            ReservedNames.BindPrincipal(session, value, _context, _runtime.Options.RecordClientAddress);
        }
    }

    public IEnumerable<string> Keys => Session.Keys.Where(static k => !ReservedNames.IsReserved(k));

    /// <summary>
    /// Whether the request's endpoint carries <see cref="DoesNotExtendSessionAttribute"/>: the session is read without
    /// touching it, and writes throw. Read from the endpoint each time, since routing may run after this middleware.
    /// </summary>
    public bool DoesNotExtend => _context.GetEndpoint()?.Metadata.GetMetadata<DoesNotExtendSessionAttribute>() is not null;

    public static RequestSession Get(HttpContext context)
        => context.Features.Get<RequestSession>() ?? throw new InvalidOperationException(
            "ClusterSession is not available for this request: call app.UseClusterSession() before the endpoints that use the session (and before app.UseAuthentication()).");

    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        ReservedNames.ThrowIfReserved(key);
        return TryGetStored(key, out value);
    }

    public void Set(string key, byte[] value)
    {
        ReservedNames.ThrowIfReserved(key);
        ArgumentNullException.ThrowIfNull(value);
        ThrowIfDoesNotExtend();
        if (CanWriteBlind)
        {
            // Name and size are checked now; the attribute count needs the stored session, so the store checks it at commit.
            _runtime.AttributeLimits.ValidateName(key);
            _runtime.AttributeLimits.ValidateValue(key, value);
            (_blind ??= new BlindWrites()).Set(key, value);
            return;
        }

        ThrowIfCannotEstablish();
        Session.Set(key, value);
    }

    /// <summary>Removes an attribute without reporting whether it existed, so it needs no load (ISession.Remove).</summary>
    public void RemoveWithoutResult(string key)
    {
        ReservedNames.ThrowIfReserved(key);
        ThrowIfDoesNotExtend();
        if (CanWriteBlind)
        {
            (_blind ??= new BlindWrites()).Remove(key);
            return;
        }

        Session.Remove(key);
    }

    public bool Remove(string key)
    {
        ReservedNames.ThrowIfReserved(key);
        ThrowIfDoesNotExtend();
        return Session.Remove(key);
    }

    public void Clear()
    {
        ThrowIfDoesNotExtend();
        var session = Session;
        foreach (var key in Keys.ToList())
        {
            session.Remove(key);
        }
    }

    public bool TryGetReserved(string name, [NotNullWhen(true)] out byte[]? value) => TryGetStored(ReservedNames.Prefix + name, out value);

    public void SetReserved(string name, byte[] value)
    {
        ThrowIfDoesNotExtend();
        var session = Session;
        ThrowIfCannotEstablish();
        session.Set(ReservedNames.Prefix + name, value);
    }

    public void RemoveReserved(string name)
    {
        ThrowIfDoesNotExtend();
        Session.Remove(ReservedNames.Prefix + name);
    }

    public async ValueTask<byte[]?> UpdateAsync(string key, Func<byte[]?, byte[]?> update, CancellationToken cancellationToken = default)
    {
        ReservedNames.ThrowIfReserved(key);
        ArgumentNullException.ThrowIfNull(update);
        ThrowIfDoesNotExtend();
        await GetLoadedAsync(cancellationToken).ConfigureAwait(false);

        // The compare-and-set works on the stored session, so the session must exist and hold no pending
        // changes; afterwards the result becomes the new baseline without being saved a second time.
        await CommitAsync(cancellationToken).ConfigureAwait(false);
        var session = _session!;
        if (session.IsNew)
        {
            ThrowIfCannotEstablish();
            await CreateAsync(session, cancellationToken).ConfigureAwait(false);
        }

        session.TryGetValue(key, out var current);
        byte[]? written;
        try
        {
            written = await _runtime.UpdateAttributeAsync(session.Id, key, current, update, _deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (SessionConflictException ex)
        {
            _runtime.Metrics.Conflicts.Add(1);
            Log.UpdateConflict(_runtime.Logger, ex);
            throw;
        }
        catch (SessionStoreUnavailableException ex)
        {
            LogStoreFailureOnce(ex, "update");
            throw;
        }

        session.AcceptStoredValue(key, written);
        return written;
    }

    public async ValueTask RenewIdAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDoesNotExtend();
        await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        var session = _session!;
        var newId = SessionId.Create();
        if (session.IsNew)
        {
            session.RenewId(newId);
            return;
        }

        // Pending changes stay pending and are saved under the new id at commit: sign-in costs the move plus one save.
        var oldId = session.Id;
        bool moved;
        try
        {
            moved = await _runtime.ChangeIdAsync(oldId, newId, _deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException ex)
        {
            LogStoreFailureOnce(ex, "change_id");
            throw;
        }

        if (moved)
        {
            session.RenewId(newId);
            _idUpdate.Send();
        }
        else
        {
            // The stored session ended meanwhile; its data must not come back, so continue with a fresh one.
            _session = _runtime.NewSession();
            _idUpdate.Expire();
        }

        Log.SessionRenewed(_runtime.Logger, SessionId.ToLogTag(oldId), SessionId.ToLogTag(_session!.Id));
    }

    public async ValueTask InvalidateAsync(CancellationToken cancellationToken = default)
    {
        await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        var session = _session!;
        if (!session.IsNew)
        {
            try
            {
                await _runtime.DeleteAsync(session.Id, _deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (SessionStoreUnavailableException ex)
            {
                LogStoreFailureOnce(ex, "delete");
                throw;
            }

            Log.SessionInvalidated(_runtime.Logger, SessionId.ToLogTag(session.Id));
            RaiseEvent(SessionLifecycleEventKind.Ended, SessionEndCause.SignedOut, session.Id);
        }

        _signedIn = false;

        _session = _runtime.NewSession();
        _idUpdate.ExpireIf(_incomingId is not null || !session.IsNew);
    }

    /// <summary>Binds the session to a principal that just signed in, normally with a new id (session fixation protection).</summary>
    public async ValueTask SignInAsync(string? principal, bool renewId, CancellationToken cancellationToken)
    {
        ThrowIfDoesNotExtend();
        if (renewId)
        {
            await RenewIdAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        }

        ThrowIfCannotEstablish();
        if (_runtime.Options.MaxSessionsPerPrincipal is { } max && principal is not null
            && !string.Equals(_session!.Principal, principal, StringComparison.Ordinal))
        {
            await AdmitAsync(principal, max, cancellationToken).ConfigureAwait(false);
        }

        ReservedNames.BindPrincipal(_session!, principal, _context, _runtime.Options.RecordClientAddress);
        _signedIn = principal is not null;
    }

    /// <summary>
    /// Counts this session against the principal's cap in the store (which binds it there too): the session is stored
    /// first when it is new, since the store admits stored sessions only. Refused: the session stays unbound and
    /// <see cref="SessionCapExceededException"/> ends the sign-in before any authentication cookie is issued.
    /// </summary>
    private async ValueTask AdmitAsync(string principal, int max, CancellationToken cancellationToken)
    {
        var policy = _runtime.Options.SessionCapPolicy;
        for (var attempt = 0; ; attempt++)
        {
            var session = _session!;
            var created = session.IsNew;
            SessionAdmission admission;
            try
            {
                if (created)
                {
                    await CreateAsync(session, cancellationToken).ConfigureAwait(false);
                }

                admission = await _runtime.AdmitAsync(session.Id, principal, max, policy, _deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (SessionStoreUnavailableException ex)
            {
                LogStoreFailureOnce(ex, "admit");
                throw;
            }

            switch (admission.Status)
            {
                case SessionAdmissionStatus.Admitted:
                    if (admission.EndedHandles.Count > 0)
                    {
                        Log.SessionCapEnded(_runtime.Logger, admission.EndedHandles.Count);
                        foreach (var handle in admission.EndedHandles)
                        {
                            RaiseEventByHandle(SessionLifecycleEventKind.Ended, SessionEndCause.Capped, handle);
                        }
                    }

                    return;
                case SessionAdmissionStatus.Refused:
                    Log.SessionCapRefused(_runtime.Logger, max);
                    if (created)
                    {
                        // Stored only to be admitted: the refused sign-in leaves nothing behind.
                        await _runtime.DeleteAsync(session.Id, _deadline, cancellationToken).ConfigureAwait(false);
                        RaiseEvent(SessionLifecycleEventKind.Ended, SessionEndCause.Capped, session.Id);
                        _session = _runtime.NewSession();
                        _idUpdate.ExpireIf(_incomingId is not null);
                    }

                    throw new SessionCapExceededException(
                        $"The sign-in was refused: this user already has the maximum of {max} session(s) (ClusterSessionOptions.MaxSessionsPerPrincipal, policy RefuseNewSession). Sign out on another device, or end one of the user's sessions, and sign in again.");
                default:
                    // The stored session ended meanwhile (revoked elsewhere): its data must not come back, so continue with a fresh one.
                    if (attempt > 0)
                    {
                        throw new SessionGoneException("The session ended twice while signing in; sign in again.");
                    }

                    _session = _runtime.NewSession();
                    _idUpdate.Expire();
                    break;
            }
        }
    }

    private bool CanWriteBlind => _session is null && _incomingId is not null && !_context.Response.HasStarted;

    private void ThrowIfDoesNotExtend()
    {
        if (DoesNotExtend)
        {
            throw new InvalidOperationException(
                "The session cannot be written by this endpoint: it has DoesNotExtendSession metadata ([DoesNotExtendSession] or .DoesNotExtendSession()), under which a request may only read the session. Write to the session from an endpoint without it.");
        }
    }

    private void ThrowIfCannotEstablish()
    {
        if (_context.Response.HasStarted && (_session is null || _session.IsNew))
        {
            throw new InvalidOperationException("The session cannot be established after the response has started: write to the session before writing the response body.");
        }
    }
}
