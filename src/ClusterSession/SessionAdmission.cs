namespace ClusterSession;

/// <summary>What <see cref="ISessionStore.AdmitAsync"/> does when a principal already has the maximum number of sessions.</summary>
public enum SessionCapPolicy
{
    /// <summary>
    /// Admit the new session and end the principal's oldest sessions (those whose absolute expiry comes first, i.e. that
    /// started first), so that no more than the maximum stay alive. The session being admitted is never the one ended.
    /// </summary>
    EndOldestSession,

    /// <summary>Refuse the new session; the principal's existing sessions stay as they are.</summary>
    RefuseNewSession,
}

/// <summary>The outcome of <see cref="ISessionStore.AdmitAsync"/>.</summary>
public enum SessionAdmissionStatus
{
    /// <summary>The session is bound to the principal and counted; <see cref="SessionAdmission.EndedHandles"/> lists the sessions ended to make room.</summary>
    Admitted,

    /// <summary>The principal had the maximum number of sessions and the policy refuses; nothing was written.</summary>
    Refused,

    /// <summary>The session to admit does not exist (deleted or expired); nothing was written.</summary>
    Gone,
}

/// <summary>The result of <see cref="ISessionStore.AdmitAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="EndedHandles">The handles (<see cref="SessionHandle"/>) of the sessions ended to make room (only when admitted under <see cref="SessionCapPolicy.EndOldestSession"/>); empty otherwise.</param>
public readonly record struct SessionAdmission(SessionAdmissionStatus Status, IReadOnlyList<string> EndedHandles)
{
    /// <summary>A refusal.</summary>
    public static SessionAdmission Refused => new(SessionAdmissionStatus.Refused, []);

    /// <summary>The session to admit is gone.</summary>
    public static SessionAdmission Gone => new(SessionAdmissionStatus.Gone, []);

    /// <summary>An admission that ended <paramref name="endedHandles"/>.</summary>
    public static SessionAdmission Admitted(IReadOnlyList<string> endedHandles) => new(SessionAdmissionStatus.Admitted, endedHandles);
}

/// <summary>
/// A sign-in was refused because the principal already has the maximum number of sessions and the cap's policy refuses
/// new ones (ASP.NET Core answers it with <c>SessionCapExceededStatusCode</c>, 409 by default). The user can sign out
/// elsewhere, or the application can end one of the user's sessions, and sign in again.
/// </summary>
public sealed class SessionCapExceededException : ClusterSessionException
{
    /// <summary>Creates the exception.</summary>
    public SessionCapExceededException(string message)
        : base(message)
    {
    }
}
