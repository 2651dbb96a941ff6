namespace ClusterSession.Cli;

/// <summary>The exit codes of <c>clustersession</c>, for scripts (docs/cli.md lists them).</summary>
public static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Ok = 0;

    /// <summary>The session (handle) or the user's sessions were not found; nothing was changed.</summary>
    public const int NotFound = 1;

    /// <summary>The command line is wrong, or the command was refused as too costly without <c>--yes</c>.</summary>
    public const int Usage = 2;

    /// <summary><c>upgrade</c> was refused (finishing it now could sign users out); its message says why and what to do.</summary>
    public const int Refused = 2;

    /// <summary>The store could not be reached or did not answer in time.</summary>
    public const int StoreUnavailable = 3;
}
