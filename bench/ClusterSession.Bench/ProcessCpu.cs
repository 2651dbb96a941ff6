using System.Globalization;

namespace ClusterSession.Bench;

/// <summary>
/// CPU time of a server process and its children, read from Linux's /proc: the time on CPU of every living
/// process of the tree (<c>/proc/PID/schedstat</c>, nanoseconds, the processes here are single-threaded)
/// plus what the root has collected from the children that already exited (<c>cutime + cstime</c> in
/// <c>/proc/PID/stat</c>, clock ticks). The difference of two readings is the tree's CPU between them, also
/// when children start or exit in between (an exited child's whole time moves into its parent's counters).
/// </summary>
internal static class ProcessCpu
{
    private const int ClockTicksName = 2; // _SC_CLK_TCK

    private static readonly double ClockTicksPerSecond = Math.Max(1, NativeMethods.sysconf(ClockTicksName));

    /// <summary>Seconds of CPU of <paramref name="rootPid"/> and its direct children, or null without /proc.</summary>
    public static double? TreeSeconds(int rootPid)
    {
        var root = ReadStat(rootPid);
        if (root is null)
        {
            return null;
        }

        var total = OnCpuSeconds(rootPid) + ((root.Value.ChildrenUser + root.Value.ChildrenSystem) / ClockTicksPerSecond);
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == rootPid)
            {
                continue;
            }

            if (ReadStat(pid) is { ParentPid: var parent } && parent == rootPid)
            {
                total += OnCpuSeconds(pid);
            }
        }

        return total;
    }

    private static double OnCpuSeconds(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/schedstat");
            var end = text.IndexOf(' ', StringComparison.Ordinal);
            return long.Parse(end < 0 ? text : text[..end], NumberStyles.None, CultureInfo.InvariantCulture) / 1e9;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 0; // exited since it was listed: its time is in the parent's counters by the next reading
        }
    }

    private static (int ParentPid, long ChildrenUser, long ChildrenSystem)? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid ..." where comm may contain spaces and parentheses: fields start after the last ')'.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (
            int.Parse(fields[1], CultureInfo.InvariantCulture),
            long.Parse(fields[13], CultureInfo.InvariantCulture),
            long.Parse(fields[14], CultureInfo.InvariantCulture));
    }
}
