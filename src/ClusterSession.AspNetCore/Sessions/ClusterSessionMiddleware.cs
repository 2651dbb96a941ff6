using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// Gives each request its lazy session (and <c>HttpContext.Session</c>), commits it before the response
/// starts, whether or not the client is still there, turns session failures into the configured error
/// response (the one place that maps failures to statuses), and slides the expiry of sessions that a
/// request carried but did not use (<see cref="SessionToucher"/>).
/// </summary>
internal sealed class ClusterSessionMiddleware
{
    private static readonly Func<object, Task> CommitOnStarting = static state => CommitBeforeResponseAsync((RequestSession)state);

    private static readonly Func<object, Task> TouchOnCompleted = static state =>
    {
        var (toucher, id) = ((SessionToucher, string))state;
        toucher.StartTouch(id);
        return Task.CompletedTask;
    };

    private readonly RequestDelegate _next;
    private readonly SessionRuntime _runtime;
    private readonly SessionToucher _toucher;

    public ClusterSessionMiddleware(RequestDelegate next, SessionRuntime runtime, SessionToucher toucher)
    {
        _next = next;
        _runtime = runtime;
        _toucher = toucher;
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var incomingId = SessionIdTransport.Read(context.Request, _runtime.Options, out var malformed);
        if (malformed && incomingId is null)
        {
            _runtime.Metrics.Misses.Add(1);
            Log.MalformedId(_runtime.Logger);
        }

        var session = new RequestSession(context, _runtime, incomingId);
        context.Response.RegisterForDispose(session);
        var adapter = new SessionAdapter(session);
        var previousFeature = context.Features.Get<ISessionFeature>();
        context.Features.Set(session);
        context.Features.Set<ISessionFeature>(adapter);
        context.Response.OnStarting(CommitOnStarting, session);
        try
        {
            try
            {
                await _next(context).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away and the endpoint noticed. Nobody reads this response, but what the
                // endpoint changed in the session so far is kept, as ASP.NET Core's own session keeps it.
                Log.RequestAborted(_runtime.Logger);
            }
            catch (Exception ex) when (StatusOf(ex, _runtime.Options) is null && !IsRefusedBodyAfterFailure(session, ex))
            {
                // The endpoint failed. As ASP.NET Core's own session does, what it changed is saved anyway; the
                // endpoint's exception goes on to the host or the app's exception handler, a commit failure only to the log.
                await CommitAfterEndpointFailureAsync(session).ConfigureAwait(false);
                throw;
            }

            await CommitAtEndAsync(session).ConfigureAwait(false);
        }
        catch (Exception ex) when (StatusOf(ex, _runtime.Options) is not null && !context.Response.HasStarted)
        {
            Fail(session, ex, "request");
        }
        catch (InvalidOperationException ex) when (IsRefusedBodyAfterFailure(session, ex))
        {
            // The app's body write was refused after a failed commit turned the response into an empty error
            // response (see CommitBeforeResponseAsync); the error response is complete as it is.
            Log.AppBodyDiscarded(_runtime.Logger);
        }
        finally
        {
            context.Features.Set(previousFeature);
            context.Features.Set<RequestSession>(null);
        }
    }

    /// <summary>
    /// The status code of a session failure the response reports, or null for anything else. The one list of
    /// which failure gets which status.
    /// </summary>
    private static int? StatusOf(Exception exception, ClusterSessionOptions options) => exception switch
    {
        SessionStoreUnavailableException => options.StoreUnavailableStatusCode,
        SessionLimitExceededException => options.LimitExceededStatusCode,
        SessionGoneException or SessionConflictException => options.ConflictStatusCode,
        SessionCapExceededException => options.SessionCapExceededStatusCode,
        _ => null,
    };

    private static bool IsRefusedBodyAfterFailure(RequestSession session, Exception exception)
        => exception is InvalidOperationException && session.HasFailed && session.Context.Response.ContentLength == 0;

    private async ValueTask CommitAfterEndpointFailureAsync(RequestSession session)
    {
        try
        {
            await CommitAtEndAsync(session).ConfigureAwait(false);
        }
        catch (ClusterSessionException ex)
        {
            session.LogStoreFailureOnce(ex, "commit");
            session.MarkFailed(sessionGone: false);
        }
    }

    /// <summary>
    /// The commit at the end of the request (the usual one is in OnStarting). Never with RequestAborted: a change
    /// the endpoint made is saved, bounded by StoreTimeout, whether or not the client is still connected.
    /// </summary>
    private async ValueTask CommitAtEndAsync(RequestSession session)
    {
        var context = session.Context;
        if (!session.UsedStore && !session.IsLoaded)
        {
            if (!session.DoesNotExtend)
            {
                ScheduleTouch(context, session.IncomingId);
            }

            return;
        }

        if (!context.Response.HasStarted)
        {
            await session.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        else if (session.NeedsCommit)
        {
            // Writes after the response started (rare; the built-in session saves them too) can only be logged on failure.
            try
            {
                await session.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (ClusterSessionException ex)
            {
                // A store failure was logged by the session already; the others are logged here without their message.
                session.LogStoreFailureOnce(ex, "commit");
                if (ex is not SessionStoreUnavailableException)
                {
                    Log.LateCommitFailed(_runtime.Logger, ex.GetType().Name);
                }

                return;
            }
        }

        // A load without touch refreshed nothing, so it must not hold back the next touch.
        if (!session.HasFailed && !session.DoesNotExtend && (session.StoredIdOrNull ?? session.IncomingId) is { } accessed)
        {
            _toucher.RecordAccess(accessed, session.StoredIdleTimeoutOrNull ?? _runtime.Options.IdleTimeout);
        }
    }

    private void ScheduleTouch(HttpContext context, string? id)
    {
        if (id is not null && _toucher.TryClaim(id))
        {
            context.Response.OnCompleted(TouchOnCompleted, (_toucher, id));
        }
    }

    /// <summary>The commit of the response's OnStarting: a failure turns the response into an error before any byte leaves.</summary>
    private static async Task CommitBeforeResponseAsync(RequestSession session)
    {
        try
        {
            await session.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (ClusterSessionException ex) when (StatusOf(ex, session.Options) is not null)
        {
            Fail(session, ex, "commit");

            // The app may already be writing its body (this runs on its first write or flush). Content-Length 0
            // makes the server refuse those bytes (the write throws, the middleware swallows that), so the
            // client gets a clean error response without the app's body and without buffering any response.
            session.Context.Response.ContentLength = 0;
        }
    }

    /// <summary>Turns the response into the configured error response; only before it started.</summary>
    private static void Fail(RequestSession session, Exception exception, string operation)
    {
        // Logged once per request: when the session logged it already (the usual case), this does nothing.
        session.LogStoreFailureOnce(exception, operation);

        // Other headers (the app's, an outer middleware's) stay; cookies go, since a sign-in whose session
        // was not saved must not hand out an authentication cookie or a session id.
        var response = session.Context.Response;
        response.StatusCode = StatusOf(exception, session.Options)!.Value;
        response.Headers.Remove(HeaderNames.SetCookie);
        response.Headers.Remove(session.Options.HeaderName);
        response.Headers.CacheControl = "no-store";
        if (exception is SessionStoreUnavailableException { RetryAfter: { } retryAfter })
        {
            response.Headers.RetryAfter = StoreCircuitBreaker.FormatRetryAfter(retryAfter);
        }

        session.MarkFailed(sessionGone: exception is SessionGoneException);
    }
}
