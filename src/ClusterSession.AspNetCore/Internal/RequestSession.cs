using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// The session of one request: loads lazily (at most once), tracks changes through the core's
/// <see cref="TrackedSession"/>, commits them once before the response starts, and moves the id
/// through the configured transports. Also a request feature, found by <see cref="Get"/>.
/// </summary>
internal sealed class RequestSession : IClusterSession
{
    /// <summary>Attribute names ClusterSession keeps for itself; hidden from the application.</summary>
    public const string ReservedPrefix = "__cs.";

    private readonly HttpContext _context;
    private readonly SessionRuntime _runtime;
    private readonly string? _incomingId;
    private TrackedSession? _session;

    // Blind writes: Set/Remove recorded for the incoming id before anything was read, so a write-only
    // request costs one save and no load. Null value: removed. Replayed onto the session when it loads.
    private Dictionary<string, byte[]?>? _blind;
    private bool _sendId;
    private bool _expireId;

    public RequestSession(HttpContext context, SessionRuntime runtime, string? incomingId)
    {
        _context = context;
        _runtime = runtime;
        _incomingId = incomingId;
    }

    /// <summary>Whether a commit failed; the request is answered with an error and not committed again.</summary>
    public bool HasFailed { get; private set; }

    /// <summary>Whether the session was loaded (or started) in this request, or has blind writes to commit.</summary>
    public bool IsLoaded => _session is not null || _blind is not null;

    /// <summary>The id of the loaded session, or null when it was not loaded or is new and unsaved.</summary>
    public string? StoredIdOrNull => _session is { IsNew: false } s ? s.Id : null;

    public string Id => Session.Id;

    public bool IsNew => Session.IsNew;

    public DateTimeOffset CreatedAt => Session.Snapshot.CreatedAt;

    public DateTimeOffset LastAccessedAt => Session.Snapshot.LastAccessedAt;

    public TimeSpan IdleTimeout
    {
        get => Session.IdleTimeout;
        set => Session.SetIdleTimeout(value);
    }

    public DateTimeOffset AbsoluteExpiresAt => Session.Snapshot.AbsoluteExpiresAt;

    public string? Principal
    {
        get => Session.Principal;
        set => BindPrincipal(Session, value);
    }

    public IEnumerable<string> Keys => Session.Keys.Where(static k => !k.StartsWith(ReservedPrefix, StringComparison.Ordinal));

    /// <summary>The tracked session; synchronous access loads it synchronously, as ASP.NET Core's own session does.</summary>
    private TrackedSession Session => _session ?? LoadSynchronously();

    public static RequestSession Get(HttpContext context)
        => context.Features.Get<RequestSession>() ?? throw new InvalidOperationException(
            "ClusterSession is not available for this request: call app.UseClusterSession() before the endpoints that use the session (and before app.UseAuthentication()).");

    public ValueTask<IClusterSession> GetLoadedAsync(CancellationToken cancellationToken)
        => _session is not null ? new ValueTask<IClusterSession>(this) : LoadSlowAsync(cancellationToken);

    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        ThrowIfReserved(key);
        return Session.TryGetValue(key, out value);
    }

    public void Set(string key, byte[] value)
    {
        ThrowIfReserved(key);
        ArgumentNullException.ThrowIfNull(value);
        if (CanWriteBlind)
        {
            // Name and size are checked now; the attribute count needs the stored session, so the store checks it at commit.
            _runtime.Options.Limits.ValidateName(key);
            _runtime.Options.Limits.ValidateValue(key, value);
            (_blind ??= new Dictionary<string, byte[]?>(StringComparer.Ordinal))[key] = value;
            return;
        }

        ThrowIfCannotEstablish();
        Session.Set(key, value);
    }

    /// <summary>Removes an attribute without reporting whether it existed, so it needs no load (ISession.Remove).</summary>
    public void RemoveWithoutResult(string key)
    {
        ThrowIfReserved(key);
        if (CanWriteBlind)
        {
            (_blind ??= new Dictionary<string, byte[]?>(StringComparer.Ordinal))[key] = null;
            return;
        }

        Session.Remove(key);
    }

    public bool Remove(string key)
    {
        ThrowIfReserved(key);
        return Session.Remove(key);
    }

    public void Clear()
    {
        var session = Session;
        foreach (var key in Keys.ToList())
        {
            session.Remove(key);
        }
    }

    public bool TryGetReserved(string name, [NotNullWhen(true)] out byte[]? value) => Session.TryGetValue(ReservedPrefix + name, out value);

    public void SetReserved(string name, byte[] value)
    {
        ThrowIfCannotEstablish();
        Session.Set(ReservedPrefix + name, value);
    }

    public void RemoveReserved(string name) => Session.Remove(ReservedPrefix + name);

    public async ValueTask<byte[]?> UpdateAsync(string key, Func<byte[]?, byte[]?> update, CancellationToken cancellationToken = default)
    {
        ThrowIfReserved(key);
        ArgumentNullException.ThrowIfNull(update);
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
            written = await _runtime.UpdateAttributeAsync(session.Id, key, current, update, cancellationToken).ConfigureAwait(false);
        }
        catch (SessionConflictException ex)
        {
            SessionDiagnostics.Conflicts.Add(1);
            Log.UpdateConflict(_runtime.Logger, ex);
            throw;
        }

        session.AcceptStoredValue(key, written);
        return written;
    }

    public async ValueTask RenewIdAsync(CancellationToken cancellationToken = default)
    {
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
        if (await _runtime.ChangeIdAsync(oldId, newId, cancellationToken).ConfigureAwait(false))
        {
            session.RenewId(newId);
            _sendId = true;
        }
        else
        {
            // The stored session ended meanwhile; its data must not come back, so continue with a fresh one.
            _session = _runtime.NewSession();
            _expireId = true;
        }

        Log.SessionRenewed(_runtime.Logger, SessionId.ToLogTag(oldId), SessionId.ToLogTag(_session!.Id));
    }

    public async ValueTask InvalidateAsync(CancellationToken cancellationToken = default)
    {
        await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        var session = _session!;
        if (!session.IsNew)
        {
            await _runtime.DeleteAsync(session.Id, cancellationToken).ConfigureAwait(false);
            Log.SessionInvalidated(_runtime.Logger, SessionId.ToLogTag(session.Id));
        }

        _session = _runtime.NewSession();
        _sendId = false;
        _expireId = _incomingId is not null || !session.IsNew;
    }

    /// <summary>Binds the session to a principal that just signed in, normally with a new id (session fixation protection).</summary>
    public async ValueTask SignInAsync(string? principal, bool renewId, CancellationToken cancellationToken)
    {
        if (renewId)
        {
            await RenewIdAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        }

        BindPrincipal(_session!, principal);
    }

    /// <summary>
    /// Binds the session to <paramref name="principal"/> and remembers the User-Agent of the binding request,
    /// which <see cref="ISessionManager.ListAsync"/> shows to tell a user's devices apart.
    /// </summary>
    private void BindPrincipal(TrackedSession session, string? principal)
    {
        if (string.Equals(principal, session.Principal, StringComparison.Ordinal))
        {
            return;
        }

        session.SetPrincipal(principal);
        var userAgent = _context.Request.Headers.UserAgent.ToString();
        if (principal is not null && userAgent.Length > 0)
        {
            SetReserved(ReservedNames.UserAgent, System.Text.Encoding.UTF8.GetBytes(userAgent.Length > 256 ? userAgent[..256] : userAgent));
        }
        else if (session.TryGetValue(ReservedPrefix + ReservedNames.UserAgent, out _))
        {
            RemoveReserved(ReservedNames.UserAgent);
        }
    }

    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        if (HasFailed)
        {
            return;
        }

        if (_session is null && _blind is not null)
        {
            await CommitBlindAsync(cancellationToken).ConfigureAwait(false);
            WriteTransport();
            return;
        }

        var session = _session;
        if (session is null)
        {
            return;
        }

        if (session.IsNew)
        {
            if (session.HasChanges)
            {
                await CreateAsync(session, cancellationToken).ConfigureAwait(false);
            }
        }
        else if (session.HasChanges)
        {
            var result = await _runtime.SaveAsync(session.GetChanges(), cancellationToken).ConfigureAwait(false);
            if (result == SessionSaveResult.Gone)
            {
                SessionDiagnostics.Conflicts.Add(1);
                Log.SessionGone(_runtime.Logger, SessionId.ToLogTag(session.Id));
                _session = _runtime.NewSession();
                _expireId = true;
                _sendId = false;
                throw new SessionGoneException(
                    "The session was deleted or expired (revoked, logged out elsewhere or timed out) before this request's changes were saved; the changes were not saved.");
            }

            session.AcceptChanges();
            SessionDiagnostics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "update"));
            Log.SessionSaved(_runtime.Logger, SessionId.ToLogTag(session.Id));
        }

        WriteTransport();
    }

    /// <summary>The commit of the response's OnStarting: a failure turns the response into an error before any byte leaves.</summary>
    public async Task CommitBeforeResponseAsync()
    {
        try
        {
            await CommitAsync(_context.RequestAborted).ConfigureAwait(false);
        }
        catch (ClusterSessionException ex) when (ex is SessionStoreUnavailableException or SessionGoneException or SessionLimitExceededException)
        {
            Fail(ex, "commit");

            // The app may already be writing its body (this runs on its first write or flush). Content-Length 0
            // makes the server refuse those bytes (the write throws, the middleware swallows that), so the
            // client gets a clean error response without the app's body and without buffering any response.
            _context.Response.ContentLength = 0;
        }
    }

    /// <summary>Turns the response into the configured error response; only before it started.</summary>
    public void Fail(ClusterSessionException exception, string operation)
    {
        HasFailed = true;
        var status = exception switch
        {
            SessionStoreUnavailableException => _runtime.Options.StoreUnavailableStatusCode,
            SessionLimitExceededException => _runtime.Options.LimitExceededStatusCode,
            _ => _runtime.Options.ConflictStatusCode,
        };
        if (exception is SessionStoreUnavailableException)
        {
            Log.StoreUnavailable(_runtime.Logger, exception, operation, status);
        }

        // Other headers (the app's, an outer middleware's) stay; cookies go, since a sign-in whose session
        // was not saved must not hand out an authentication cookie or a session id.
        var response = _context.Response;
        response.StatusCode = status;
        response.Headers.Remove(Microsoft.Net.Http.Headers.HeaderNames.SetCookie);
        response.Headers.Remove(_runtime.Options.HeaderName);
        response.Headers.CacheControl = "no-store";
        if (exception is SessionStoreUnavailableException { RetryAfter: { } retryAfter })
        {
            response.Headers.RetryAfter = StoreCircuitBreaker.FormatRetryAfter(retryAfter);
        }

        if (exception is SessionGoneException)
        {
            ExpireTransport();
        }
    }

    /// <summary>
    /// Saves blind writes with one store call. When the incoming id is unknown, deleted or expired (Gone), the
    /// writes start a new session with a new id, exactly as a write after a miss does; the old id never comes back.
    /// </summary>
    private async ValueTask CommitBlindAsync(CancellationToken cancellationToken)
    {
        var blind = _blind!;
        var set = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (var (name, value) in blind)
        {
            if (value is null)
            {
                removed.Add(name);
            }
            else
            {
                set[name] = value;
            }
        }

        var result = await _runtime.SaveAsync(new SessionChanges(_incomingId!, set, removed), cancellationToken).ConfigureAwait(false);
        if (result == SessionSaveResult.Saved)
        {
            // Saved: a later read in this request loads the stored session, which already holds these writes.
            _blind = null;
            SessionDiagnostics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "update"));
            Log.SessionSaved(_runtime.Logger, SessionId.ToLogTag(_incomingId!));
            return;
        }

        SessionDiagnostics.Misses.Add(1);
        Log.SessionMiss(_runtime.Logger, SessionId.ToLogTag(_incomingId!));
        _session = _runtime.NewSession();
        ReplayBlindWrites(_session);
        if (_session.HasChanges)
        {
            await CreateAsync(_session, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Applies blind writes to the loaded (or new) session: removals first, so the count check sees the smallest set.</summary>
    private void ReplayBlindWrites(TrackedSession session)
    {
        var blind = _blind;
        if (blind is null)
        {
            return;
        }

        _blind = null;
        try
        {
            foreach (var (name, value) in blind)
            {
                if (value is null)
                {
                    session.Remove(name);
                }
            }

            foreach (var (name, value) in blind)
            {
                if (value is not null)
                {
                    session.Set(name, value);
                }
            }
        }
        catch (SessionLimitExceededException)
        {
            // The blind writes leave more attributes than allowed: nothing of this request may be saved half-way.
            HasFailed = true;
            throw;
        }
    }

    private bool CanWriteBlind => _session is null && _incomingId is not null && !_context.Response.HasStarted;

    private async ValueTask<IClusterSession> LoadSlowAsync(CancellationToken cancellationToken)
    {
        if (_incomingId is null)
        {
            _session = _runtime.NewSession();
            ReplayBlindWrites(_session);
            return this;
        }

        var snapshot = await _runtime.LoadAsync(_incomingId, cancellationToken).ConfigureAwait(false);
        if (_session is not null)
        {
            return this;
        }

        if (snapshot is null)
        {
            SessionDiagnostics.Misses.Add(1);
            Log.SessionMiss(_runtime.Logger, SessionId.ToLogTag(_incomingId));
            _session = _runtime.NewSession();
        }
        else
        {
            SessionDiagnostics.Loads.Add(1);
            Log.SessionLoaded(_runtime.Logger, SessionId.ToLogTag(_incomingId));
            _session = new TrackedSession(snapshot, _runtime.Options.Limits);
        }

        ReplayBlindWrites(_session);
        return this;
    }

    private TrackedSession LoadSynchronously()
    {
        // ASP.NET Core's own session blocks the same way when it is used before LoadAsync.
        LoadSlowAsync(_context.RequestAborted).AsTask().GetAwaiter().GetResult();
        return _session!;
    }

    private async ValueTask CreateAsync(TrackedSession session, CancellationToken cancellationToken)
    {
        // A 192-bit random id never collides in practice; one retry keeps an astronomically unlikely collision harmless.
        for (var attempt = 0; ; attempt++)
        {
            if (await _runtime.CreateAsync(session.ToNewSnapshot(), cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            if (attempt > 0)
            {
                throw new SessionStoreUnavailableException("The session store refused to create a new session twice; check the store.");
            }

            session.RenewId(SessionId.Create());
        }

        session.AcceptChanges();
        _sendId = true;
        SessionDiagnostics.Saves.Add(1, new KeyValuePair<string, object?>("cluster_session.save", "create"));
        Log.SessionCreated(_runtime.Logger, SessionId.ToLogTag(session.Id));
    }

    private void WriteTransport()
    {
        if (_context.Response.HasStarted)
        {
            return;
        }

        if (_sendId)
        {
            SessionIdTransport.Write(_context, _runtime.Options, _session!.Id);
            _sendId = false;
            _expireId = false;
        }
        else if (_expireId)
        {
            ExpireTransport();
        }
    }

    private void ExpireTransport()
    {
        if (!_context.Response.HasStarted)
        {
            SessionIdTransport.Expire(_context, _runtime.Options);
        }

        _expireId = false;
    }

    private void ThrowIfCannotEstablish()
    {
        if (_context.Response.HasStarted && (_session is null || _session.IsNew))
        {
            throw new InvalidOperationException("The session cannot be established after the response has started: write to the session before writing the response body.");
        }
    }

    private static void ThrowIfReserved(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.StartsWith(ReservedPrefix, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Session keys starting with '{ReservedPrefix}' are reserved for ClusterSession; choose another key.", nameof(key));
        }
    }
}

/// <summary>Names (after <see cref="RequestSession.ReservedPrefix"/>) of ClusterSession's own attributes.</summary>
internal static class ReservedNames
{
    public const string UserAgent = "ua";
    public const string TicketKey = "tk";
    public const string Ticket = "ticket";
}
