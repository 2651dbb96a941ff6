namespace ClusterSession;

/// <summary>
/// A store whose layout is versioned: release N reads and writes what release N−1 wrote, and while older nodes may
/// still serve, N keeps writing what they read; <see cref="UpgradeAsync"/> (the operator's <c>clustersession upgrade</c>)
/// finishes the move to the current layout. docs/operations.md, "Upgrading", is the procedure.
/// </summary>
public interface ISessionStoreUpgrade
{
    /// <summary>
    /// Whether this node still writes the previous release's layout (sessions keyed by their ids) because the upgrade of
    /// the store has not been finished. Read from the store when the store starts and refreshed while it runs.
    /// </summary>
    bool WritesPreviousLayout { get; }

    /// <summary>
    /// Finishes the upgrade to the current layout: refuses while it can tell that a node of the previous release is still
    /// serving, otherwise moves or rewrites what is left, safe to run twice and under load.
    /// </summary>
    ValueTask<SessionStoreUpgradeResult> UpgradeAsync(CancellationToken cancellationToken = default);
}

/// <summary>How an upgrade ended.</summary>
public enum SessionStoreUpgradeStatus
{
    /// <summary>The store already was on the current layout: nothing was changed.</summary>
    NothingToDo,

    /// <summary>The store is now on the current layout.</summary>
    Upgraded,

    /// <summary>Nothing was changed, because finishing now could sign users out; <see cref="SessionStoreUpgradeResult.Message"/> says why and what to do.</summary>
    Refused,
}

/// <summary>The outcome of <see cref="ISessionStoreUpgrade.UpgradeAsync"/>.</summary>
/// <param name="Status">How it ended.</param>
/// <param name="Message">One sentence for the operator: what was done, or why nothing was and what to do.</param>
/// <param name="SessionsMoved">Sessions moved from the previous layout to the current one by this run.</param>
public sealed record SessionStoreUpgradeResult(SessionStoreUpgradeStatus Status, string Message, long SessionsMoved);
