using ClusterSession.AspNetCore.Adoption;
using ClusterSession.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// The import of ASP.NET Core's built-in session (<see cref="ClusterSessionOptions.ImportBuiltInSession"/>), at the load of a
/// request that carries no ClusterSession id: only a request that uses its session pays for it. All or nothing per user: the
/// new session is created with every value in one store call, then the old entry is deleted; if that delete fails the new
/// session is deleted again and the request fails as on any store outage, leaving the old session in place for the next try.
/// </summary>
internal sealed partial class RequestSession
{
    /// <summary>Imports the built-in session the request names, if any; returns whether the request now has the imported session.</summary>
    private async ValueTask<bool> TryImportBuiltInSessionAsync(CancellationToken cancellationToken)
    {
        var import = _runtime.Options.ImportBuiltInSession;
        if (!import.Enabled || _context.Response.HasStarted
            || !_context.Request.Cookies.TryGetValue(import.CookieName, out var cookie) || string.IsNullOrEmpty(cookie))
        {
            return false;
        }

        var importer = _context.RequestServices.GetRequiredService<BuiltInSessionImporter>();
        var key = importer.UnprotectKey(cookie);
        if (key is null)
        {
            Log.BuiltInSessionUnreadable(_runtime.Logger, "cookie");
            ExpireBuiltInCookie(import);
            return false;
        }

        UsedStore = true;
        var blob = await importer.ReadAsync(key, cancellationToken).ConfigureAwait(false);
        if (blob is null)
        {
            Log.BuiltInSessionNotFound(_runtime.Logger);
            ExpireBuiltInCookie(import);
            return false;
        }

        if (!BuiltInSessionFormat.TryRead(blob, out var values) || BuildImported(values) is not { } session)
        {
            Log.BuiltInSessionUnreadable(_runtime.Logger, "cache entry");
            ExpireBuiltInCookie(import);

            // What cannot be imported now never can: the entry goes, so that the cookie, replayed, finds nothing.
            await importer.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
            return false;
        }

        await CreateAsync(session, cancellationToken).ConfigureAwait(false);
        try
        {
            await importer.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException)
        {
            // The old entry stays, so the new session must not: the next request imports once more, never twice.
            _idUpdate.ExpireIf(false);
            try
            {
                await _runtime.DeleteAsync(session.Id, _deadline, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ClusterSessionException)
            {
                // Nobody was told its id; it ends at its idle timeout.
            }

            throw;
        }

        ExpireBuiltInCookie(import);
        _runtime.Metrics.Loads.Add(1);
        Log.BuiltInSessionImported(_runtime.Logger, SessionId.ToLogTag(session.Id), values.Count);
        Adopt(session);
        return true;
    }

    /// <summary>A new session with the built-in session's values, or null when one of them does not fit ClusterSession's limits or names.</summary>
    private TrackedSession? BuildImported(List<KeyValuePair<string, byte[]>> values)
    {
        var session = _runtime.NewSession();
        try
        {
            foreach (var (name, value) in values)
            {
                if (ReservedNames.IsReserved(name))
                {
                    return null;
                }

                session.Set(name, value);
            }
        }
        catch (Exception ex) when (ex is SessionLimitExceededException or ArgumentException)
        {
            return null;
        }

        return session;
    }

    private void ExpireBuiltInCookie(BuiltInSessionImportOptions import)
    {
        if (!_context.Response.HasStarted)
        {
            _context.Response.Cookies.Delete(import.CookieName, new CookieOptions { Path = import.CookiePath, Domain = import.CookieDomain });
        }
    }
}
