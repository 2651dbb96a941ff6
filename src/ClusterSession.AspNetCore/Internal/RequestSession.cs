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

    /// <summary>Whether the session was loaded (or started) in this request.</summary>
    public bool IsLoaded => _session is not null;

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
        set => Session.SetPrincipal(value);
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
        ThrowIfCannotEstablish();
        Session.Set(key, value);
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

        var attributes = new Dictionary<string, byte[]>(session.Snapshot.Attributes, StringComparer.Ordinal);
        if (written is null)
        {
            attributes.Remove(key);
        }
        else
        {
            attributes[key] = written;
        }

        var s = session.Snapshot;
        _session = new TrackedSession(
            new SessionSnapshot(s.Id, s.CreatedAt, s.LastAccessedAt, s.IdleTimeout, s.AbsoluteExpiresAt, s.Principal, s.Version + 1, attributes),
            _runtime.Options.Limits);
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

        await CommitAsync(cancellationToken).ConfigureAwait(false);
        var oldId = session.Id;
        if (await _runtime.ChangeIdAsync(oldId, newId, cancellationToken).ConfigureAwait(false))
        {
            var s = session.Snapshot;
            _session = new TrackedSession(
                new SessionSnapshot(newId, s.CreatedAt, s.LastAccessedAt, s.IdleTimeout, s.AbsoluteExpiresAt, s.Principal, s.Version, s.Attributes),
                _runtime.Options.Limits);
            _sendId = true;
        }
        else
        {
            // The stored session ended meanwhile; its data must not come back, so continue with a fresh one.
            _session = _runtime.NewSession();
            _expireId = true;
        }

        Log.SessionRenewed(_runtime.Logger, SessionId.ToLogTag(oldId), SessionId.ToLogTag(_session.Id));
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
    public async ValueTask SignInAsync(string? principal, string? userAgent, bool renewId, CancellationToken cancellationToken)
    {
        if (renewId)
        {
            await RenewIdAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        }

        var session = _session!;
        session.SetPrincipal(principal);
        if (!string.IsNullOrEmpty(userAgent))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(userAgent.Length > 256 ? userAgent[..256] : userAgent);
            SetReserved(ReservedNames.UserAgent, bytes);
        }
    }

    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        var session = _session;
        if (session is null || HasFailed)
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
        catch (ClusterSessionException ex) when (ex is SessionStoreUnavailableException or SessionGoneException)
        {
            Fail(ex, "commit");
        }
    }

    /// <summary>Turns the response into the configured error response; only before it started.</summary>
    public void Fail(ClusterSessionException exception, string operation)
    {
        HasFailed = true;
        var status = exception is SessionStoreUnavailableException ? _runtime.Options.StoreUnavailableStatusCode : _runtime.Options.ConflictStatusCode;
        if (exception is SessionStoreUnavailableException)
        {
            Log.StoreUnavailable(_runtime.Logger, exception, operation, status);
        }

        var response = _context.Response;
        response.Headers.Clear();
        response.StatusCode = status;
        response.Headers.CacheControl = "no-store";
        if (exception is SessionGoneException)
        {
            ExpireTransport();
        }
    }

    private async ValueTask<IClusterSession> LoadSlowAsync(CancellationToken cancellationToken)
    {
        if (_incomingId is null)
        {
            _session = _runtime.NewSession();
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
