using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>
/// Gives each request its lazy session (and <c>HttpContext.Session</c>), commits it before the response
/// starts, and turns store failures into the configured error status instead of a success.
/// </summary>
internal sealed class ClusterSessionMiddleware
{
    private static readonly Func<object, Task> CommitOnStarting = static state => ((RequestSession)state).CommitBeforeResponseAsync();

    private readonly RequestDelegate _next;
    private readonly SessionRuntime _runtime;

    public ClusterSessionMiddleware(RequestDelegate next, SessionRuntime runtime)
    {
        _next = next;
        _runtime = runtime;
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var incomingId = SessionIdTransport.Read(context.Request, _runtime.Options, out var malformed);
        if (malformed && incomingId is null)
        {
            SessionDiagnostics.Misses.Add(1);
            Log.MalformedId(_runtime.Logger);
        }

        var session = new RequestSession(context, _runtime, incomingId);
        var adapter = new SessionAdapter(session);
        var previousFeature = context.Features.Get<ISessionFeature>();
        context.Features.Set(session);
        context.Features.Set<ISessionFeature>(adapter);
        context.Response.OnStarting(CommitOnStarting, session);
        try
        {
            await _next(context).ConfigureAwait(false);
            if (!context.Response.HasStarted)
            {
                await session.CommitAsync(context.RequestAborted).ConfigureAwait(false);
            }
            else if (session.IsLoaded && !session.HasFailed)
            {
                await CommitLateAsync(session, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (ClusterSessionException ex) when (ex is SessionStoreUnavailableException or SessionGoneException or SessionConflictException or SessionLimitExceededException && !context.Response.HasStarted)
        {
            session.Fail(ex, "request");
        }
        catch (InvalidOperationException) when (session.HasFailed && context.Response.ContentLength == 0)
        {
            // The app's body write was refused after a failed commit turned the response into an empty error
            // response (see RequestSession.CommitBeforeResponseAsync); the error response is complete as it is.
            Log.AppBodyDiscarded(_runtime.Logger);
        }
        finally
        {
            context.Features.Set(previousFeature);
            context.Features.Set<RequestSession>(null);
        }
    }

    private async ValueTask CommitLateAsync(RequestSession session, CancellationToken cancellationToken)
    {
        // Writes after the response started (rare; the built-in session saves them too) can only be logged on failure.
        try
        {
            await session.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ClusterSessionException ex)
        {
            Log.LateCommitFailed(_runtime.Logger, ex);
        }
    }
}
