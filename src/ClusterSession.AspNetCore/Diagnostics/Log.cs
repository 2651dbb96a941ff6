using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Diagnostics;

/// <summary>Event ids of ClusterSession.AspNetCore, one place so they never collide.</summary>
internal static class EventIds
{
    public const int SessionLoaded = 1;
    public const int SessionMiss = 2;
    public const int SessionCreated = 3;
    public const int SessionSaved = 4;
    public const int SessionGone = 5;
    public const int SessionRenewed = 6;
    public const int SessionInvalidated = 7;
    public const int StoreUnavailable = 8;
    public const int LateCommitFailed = 9;
    public const int MalformedId = 10;
    public const int SessionsRevoked = 11;
    public const int UpdateConflict = 12;
    public const int AppBodyDiscarded = 13;
    public const int CircuitOpened = 14;
    public const int CircuitProbing = 15;
    public const int CircuitProbeFailed = 16;
    public const int CircuitClosed = 17;
    public const int TouchFailed = 18;
    public const int RequestAborted = 19;
    public const int AttributeUnreadable = 20;
    public const int SessionCapEnded = 21;
    public const int SessionCapRefused = 22;
    public const int KeyRingUnencrypted = 23;
    public const int UnencryptedKeyRefused = 24;
    public const int AttributeUndecryptable = 25;
    public const int BuiltInSessionUnreadable = 26;
    public const int BuiltInSessionNotFound = 27;
    public const int BuiltInSessionImported = 28;
    public const int AuthenticationCookieImported = 29;
    public const int AuthenticationCookieNotImported = 30;
    public const int LifecycleEventLost = 31;
    public const int LifecycleObserverFailed = 32;
    public const int LifecycleSubscribeFailed = 33;
}

/// <summary>Source-generated log messages. Ids never appear; only <see cref="SessionId.ToLogTag"/> tags.</summary>
internal static partial class Log
{
    [LoggerMessage(EventIds.SessionLoaded, LogLevel.Debug, "Session {Tag} loaded.")]
    public static partial void SessionLoaded(ILogger logger, string tag);

    [LoggerMessage(EventIds.SessionMiss, LogLevel.Debug, "Session {Tag} not found (expired, revoked or never existed); a new session starts if the request writes.")]
    public static partial void SessionMiss(ILogger logger, string tag);

    [LoggerMessage(EventIds.SessionCreated, LogLevel.Debug, "Session {Tag} created.")]
    public static partial void SessionCreated(ILogger logger, string tag);

    [LoggerMessage(EventIds.SessionSaved, LogLevel.Trace, "Session {Tag} saved.")]
    public static partial void SessionSaved(ILogger logger, string tag);

    [LoggerMessage(EventIds.SessionGone, LogLevel.Information, "Session {Tag} was deleted or expired before this request's changes could be saved; the changes were not saved.")]
    public static partial void SessionGone(ILogger logger, string tag);

    [LoggerMessage(EventIds.SessionRenewed, LogLevel.Debug, "Session {OldTag} renewed as {NewTag}.")]
    public static partial void SessionRenewed(ILogger logger, string oldTag, string newTag);

    [LoggerMessage(EventIds.SessionInvalidated, LogLevel.Debug, "Session {Tag} invalidated.")]
    public static partial void SessionInvalidated(ILogger logger, string tag);

    [LoggerMessage(EventIds.StoreUnavailable, LogLevel.Error, "The session store failed during a {Operation}; the request cannot use its session (logged once per request, whether or not the application handles the error).")]
    public static partial void StoreUnavailable(ILogger logger, Exception exception, string operation);

    [LoggerMessage(EventIds.LateCommitFailed, LogLevel.Warning, "Session changes made after the response started could not be saved ({ExceptionType}); the client already got the response.")]
    public static partial void LateCommitFailed(ILogger logger, string exceptionType);

    [LoggerMessage(EventIds.MalformedId, LogLevel.Debug, "A malformed session id was ignored (treated as no session).")]
    public static partial void MalformedId(ILogger logger);

    [LoggerMessage(EventIds.SessionsRevoked, LogLevel.Information, "{Count} session(s) of a principal revoked.")]
    public static partial void SessionsRevoked(ILogger logger, int count);

    [LoggerMessage(EventIds.UpdateConflict, LogLevel.Warning, "An atomic session update gave up after repeated concurrent changes.")]
    public static partial void UpdateConflict(ILogger logger, Exception exception);

    [LoggerMessage(EventIds.AppBodyDiscarded, LogLevel.Debug, "The application's response body was discarded because the session commit failed; the error response was sent instead.")]
    public static partial void AppBodyDiscarded(ILogger logger);

    [LoggerMessage(EventIds.CircuitOpened, LogLevel.Warning, "The session store failed {Failures} time(s) in a row: the circuit is open, requests that need the session fail at once, and one call tries the store again every {BreakSeconds} s.")]
    public static partial void CircuitOpened(ILogger logger, int failures, double breakSeconds);

    [LoggerMessage(EventIds.CircuitProbing, LogLevel.Debug, "Trying the session store again with one {Operation} (circuit half-open).")]
    public static partial void CircuitProbing(ILogger logger, string operation);

    [LoggerMessage(EventIds.CircuitProbeFailed, LogLevel.Debug, "The session store is still unavailable; the next try is in {BreakSeconds} s.")]
    public static partial void CircuitProbeFailed(ILogger logger, double breakSeconds);

    [LoggerMessage(EventIds.CircuitClosed, LogLevel.Information, "The session store answered again: the circuit is closed and requests use the store as usual.")]
    public static partial void CircuitClosed(ILogger logger);

    [LoggerMessage(EventIds.TouchFailed, LogLevel.Warning, "Refreshing the expiry of a session after a response failed ({ExceptionType}); the next attempt comes after the touch interval.")]
    public static partial void TouchFailed(ILogger logger, string exceptionType);

    [LoggerMessage(EventIds.RequestAborted, LogLevel.Debug, "The client went away during the request; the session changes were committed anyway.")]
    public static partial void RequestAborted(ILogger logger);

    [LoggerMessage(EventIds.AttributeUnreadable, LogLevel.Warning, "An attribute of session {Tag} no longer deserializes as {RequestedType} (was its type changed by a deploy?); policy {Policy} applied. Logged once per request.")]
    public static partial void AttributeUnreadable(ILogger logger, string tag, string requestedType, UnreadableAttributePolicy policy);

    [LoggerMessage(EventIds.AttributeUndecryptable, LogLevel.Warning, "An encrypted attribute of session {Tag} does not decrypt (Data Protection key gone or revoked, or the stored value altered); policy {Policy} applied. Logged once per request.")]
    public static partial void AttributeUndecryptable(ILogger logger, string tag, UnreadableAttributePolicy policy);

    [LoggerMessage(EventIds.SessionCapEnded, LogLevel.Information, "A sign-in reached the per-principal session cap; {Count} older session(s) of the principal ended.")]
    public static partial void SessionCapEnded(ILogger logger, int count);

    [LoggerMessage(EventIds.SessionCapRefused, LogLevel.Information, "A sign-in was refused: the principal already has the maximum of {Max} session(s).")]
    public static partial void SessionCapRefused(ILogger logger, int max);

    [LoggerMessage(EventIds.KeyRingUnencrypted, LogLevel.Warning, "The Data Protection key ring is kept in the session store with no key encryption: anyone who can read the store gets the master keys and can forge authentication cookies. Encrypt the keys at rest with services.AddDataProtection().ProtectKeysWithCertificate(certificate) (or another IXmlEncryptor) on every host; docs/security.md, \"The key ring at rest\".")]
    public static partial void KeyRingUnencrypted(ILogger logger);

    [LoggerMessage(EventIds.UnencryptedKeyRefused, LogLevel.Error, "Data Protection key '{FriendlyName}' was not added to the key ring in the session store: its master key is not encrypted, but the ring holds keys other hosts encrypted. This host cannot decrypt them (certificate missing?) and must not add a key in clear; configure the same ProtectKeysWithCertificate as the other hosts.")]
    public static partial void UnencryptedKeyRefused(ILogger logger, string friendlyName);

    [LoggerMessage(EventIds.BuiltInSessionUnreadable, LogLevel.Warning, "A built-in session's {What} could not be imported (corrupt, truncated, tampered, foreign, protected with another key ring, or over ClusterSession's limits); the request continues without it.")]
    public static partial void BuiltInSessionUnreadable(ILogger logger, string what);

    [LoggerMessage(EventIds.BuiltInSessionNotFound, LogLevel.Information, "The built-in session a request's cookie names is not in its cache (expired, imported already, or never stored); the request continues without it.")]
    public static partial void BuiltInSessionNotFound(ILogger logger);

    [LoggerMessage(EventIds.BuiltInSessionImported, LogLevel.Information, "Session {Tag} imported from the built-in session with {Count} value(s); the built-in's entry was deleted.")]
    public static partial void BuiltInSessionImported(ILogger logger, string tag, int count);

    [LoggerMessage(EventIds.AuthenticationCookieImported, LogLevel.Information, "A self-contained authentication cookie of scheme {Scheme} was imported: its ticket moved into session {Tag} and the browser gets a cookie holding only a reference.")]
    public static partial void AuthenticationCookieImported(ILogger logger, string scheme, string tag);

    [LoggerMessage(EventIds.AuthenticationCookieNotImported, LogLevel.Information, "A self-contained authentication cookie of scheme {Scheme} was not imported ({Reason}); the request is not signed in.")]
    public static partial void AuthenticationCookieNotImported(ILogger logger, string scheme, string reason);

    [LoggerMessage(EventIds.LifecycleEventLost, LogLevel.Warning, "A session lifecycle event ({Kind}) could not be sent through the store and is lost.")]
    public static partial void LifecycleEventLost(ILogger logger, Exception exception, SessionLifecycleEventKind kind);

    [LoggerMessage(EventIds.LifecycleObserverFailed, LogLevel.Error, "A session lifecycle observer ({Observer}) threw on a {Kind} event.")]
    public static partial void LifecycleObserverFailed(ILogger logger, Exception exception, string observer, SessionLifecycleEventKind kind);

    [LoggerMessage(EventIds.LifecycleSubscribeFailed, LogLevel.Warning, "Could not subscribe to session lifecycle events through the store; retrying in {RetryDelay}. Events sent meanwhile do not reach this node.")]
    public static partial void LifecycleSubscribeFailed(ILogger logger, Exception exception, TimeSpan retryDelay);
}
