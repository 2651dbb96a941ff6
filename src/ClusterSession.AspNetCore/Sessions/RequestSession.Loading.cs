using ClusterSession.AspNetCore.Diagnostics;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>Loading: lazily, at most once per request, asynchronously or (for ISession's synchronous API) synchronously.</summary>
internal sealed partial class RequestSession
{
    /// <summary>Whether the session was loaded (or started) in this request, or has blind writes to commit.</summary>
    public bool IsLoaded => _session is not null || _blind is not null;

    /// <summary>Whether the request asked the store for its session (load or blind save), successfully or not.</summary>
    public bool UsedStore { get; private set; }

    /// <summary>The tracked session; synchronous access loads it synchronously, as ASP.NET Core's own session does.</summary>
    private TrackedSession Session => _session ?? LoadSynchronously();

    /// <summary>
    /// The loaded session. A cancelled token throws in every case, also when the session is loaded already
    /// or the request has no id (and so nothing to load), so callers see cancellation the same way every time.
    /// </summary>
    public ValueTask<IClusterSession> GetLoadedAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<IClusterSession>(cancellationToken);
        }

        return _session is not null ? new ValueTask<IClusterSession>(this) : LoadSlowAsync(cancellationToken);
    }

    private async ValueTask<IClusterSession> LoadSlowAsync(CancellationToken cancellationToken)
    {
        if (_incomingId is null)
        {
            try
            {
                if (!await TryImportBuiltInSessionAsync(cancellationToken).ConfigureAwait(false))
                {
                    Adopt(_runtime.NewSession());
                }
            }
            catch (SessionStoreUnavailableException ex)
            {
                LogStoreFailureOnce(ex, "import");
                throw;
            }

            return this;
        }

        SessionSnapshot? snapshot;
        UsedStore = true;
        try
        {
            var options = DoesNotExtend ? SessionLoadOptions.NoTouch : SessionLoadOptions.None;
            snapshot = await _runtime.LoadAsync(_incomingId, options, _deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException ex)
        {
            LogStoreFailureOnce(ex, "load");
            throw;
        }

        if (_session is not null)
        {
            return this;
        }

        if (snapshot is null)
        {
            _runtime.Metrics.Misses.Add(1);
            Log.SessionMiss(_runtime.Logger, SessionId.ToLogTag(_incomingId));
            Adopt(_runtime.NewSession());
        }
        else
        {
            _runtime.Metrics.Loads.Add(1);
            Log.SessionLoaded(_runtime.Logger, SessionId.ToLogTag(_incomingId));
            Adopt(new TrackedSession(snapshot, _runtime.AttributeLimits));
        }

        return this;
    }

    private TrackedSession LoadSynchronously()
    {
        // ASP.NET Core's own session blocks the same way when it is used before LoadAsync.
        LoadSlowAsync(_context.RequestAborted).AsTask().GetAwaiter().GetResult();
        return _session!;
    }

    /// <summary>Makes <paramref name="session"/> the request's session and replays the blind writes made before it loaded.</summary>
    private void Adopt(TrackedSession session)
    {
        _session = session;
        var blind = _blind;
        if (blind is null)
        {
            return;
        }

        _blind = null;
        try
        {
            blind.ReplayOnto(session);
        }
        catch (SessionLimitExceededException)
        {
            // The blind writes leave more attributes than allowed: nothing of this request may be saved half-way.
            HasFailed = true;
            throw;
        }
    }
}
