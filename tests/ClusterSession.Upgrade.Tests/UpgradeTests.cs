using Xunit.Abstractions;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// The last release on layout 2 (v0.2.0-preview.1, eng/baseline-release.txt) and the current code on one store, in two phases:
/// <list type="number">
/// <item>mixed: both serve the same users side by side, as during a rolling deploy: no sign-out, no lost write;</item>
/// <item>upgrade: <c>clustersession upgrade</c> (the current CLI, a process) is refused while the previous release serves,
/// then, with it stopped, upgrades the store: every user still signed in with every value, no raw session id left in the
/// store, and a second run has nothing to do.</item>
/// </list>
/// One class per store; each names only its store.
/// </summary>
public abstract class UpgradeTests<TStore>(LayoutTwoSideBySide<TStore> cluster, ITestOutputHelper output) : IClassFixture<LayoutTwoSideBySide<TStore>>
    where TStore : UpgradeStore, new()
{
    /// <summary>
    /// What the CLI prints for a wrong command line: an exit code 2 that says one of these is not a refusal. (Step 3 runs
    /// the same command line and must exit 0, so a usage error cannot pass both steps either way.)
    /// </summary>
    private static readonly string[] UsageErrors = ["Usage: clustersession", "Unknown command", "Unknown option"];

    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long after the last older node stopped the upgrade may still refuse: three of the nodes' 5-second layout refreshes
    /// (the window in which a node counts as alive), plus a margin for a loaded machine.
    /// </summary>
    private static readonly TimeSpan OlderNodeWindowBound = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task Mixed_phase_previous_release_and_current_code_serve_the_same_users_side_by_side_with_no_sign_out_and_no_lost_write()
    {
        var traffic = await cluster.MixedPhase;
        output.WriteLine($"Mixed phase ({cluster.PreviousSide} beside {cluster.CurrentSide(1)}): {traffic.Summary}");
        Assert.True(traffic.AllKept, $"Mixed phase: {traffic.Summary}");
    }

    [Fact]
    public async Task Upgrade_phase_refused_while_the_previous_release_serves_then_keeps_every_user_signed_in_with_every_value_and_leaves_no_raw_session_id()
    {
        var mixed = await cluster.MixedPhase;
        Assert.True(mixed.AllKept, $"The mixed phase failed, so the upgrade phase did not start: {mixed.Summary}");
        Side[] currentNodes = [cluster.CurrentSide(1), cluster.CurrentSide(2)];

        // Step 1: refused while an older node still serves, right after it created a session.
        var late = cluster.NewDevice();
        var beforeRefusal = new Traffic();
        await beforeRefusal.LoginAsync(late, cluster.PreviousSide);
        await beforeRefusal.WriteAsync(late, cluster.PreviousSide, "late", "written on the previous release just before the upgrade");
        Assert.True(beforeRefusal.AllKept, $"Step 1, a new session on the previous release: {beforeRefusal.Summary}");
        var refused = await UpgradeAsync("step 1, the previous release serving");
        Assert.True(refused.ExitCode == 2 && !UsageErrors.Any(e => refused.Error.Contains(e, StringComparison.OrdinalIgnoreCase)),
            $"Step 1: `upgrade` while the previous release serves must be refused (exit code 2, not a usage error):\n{refused}");

        // Step 2: the refusal changed nothing: both releases still serve every device.
        var afterRefusal = new Traffic();
        await Task.WhenAll(cluster.Devices.Select(async device =>
        {
            await afterRefusal.CheckAsync(device, cluster.PreviousSide);
            await afterRefusal.CheckAsync(device, currentNodes[0]);
        }));
        output.WriteLine($"Step 2, after the refusal: {afterRefusal.Summary}");
        Assert.True(afterRefusal.AllKept, $"Step 2, after the refused upgrade: {afterRefusal.Summary}");
        var before = RawSessionIds.Find(await cluster.Store.DumpAsync(), cluster.SessionIdOwners());
        output.WriteLine($"Before the upgrade (for information; the previous release decides): {before.Count} places in the store hold a raw session id");

        // Step 3: the previous release stops (the last old node of the deploy); the upgrade runs. As an operator would, it is
        // run again while it says an older node created a session lately (within the window a live node is counted in).
        Assert.Equal(0, await cluster.Previous.TerminateAsync(StopDeadline));
        var stopped = DateTime.UtcNow;
        var upgraded = await UpgradeAsync("step 3, the previous release stopped");
        while (upgraded.ExitCode == 2 && upgraded.Output.Contains("within the last", StringComparison.Ordinal) && DateTime.UtcNow - stopped < OlderNodeWindowBound)
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            upgraded = await UpgradeAsync("step 3, again");
        }

        Assert.True(upgraded.ExitCode == 0, $"Step 3: `upgrade` with only current nodes serving must succeed (exit code 0):\n{upgraded}");

        // Step 4: every device still signed in, with every value, on every current node.
        var afterUpgrade = new Traffic();
        await Task.WhenAll(cluster.Devices.Select(async device =>
        {
            foreach (var node in currentNodes)
            {
                await afterUpgrade.CheckAsync(device, node);
            }
        }));
        output.WriteLine($"Step 4, after the upgrade: {afterUpgrade.Summary}");
        Assert.True(afterUpgrade.AllKept, $"Step 4, after the upgrade: {afterUpgrade.Summary}");

        // Step 5: no raw session id anywhere in the store.
        var owners = cluster.SessionIdOwners();
        var dump = await cluster.Store.DumpAsync();
        var found = RawSessionIds.Find(dump, owners);
        output.WriteLine($"Step 5: {dump.Count} keys, fields, values or rows searched for {owners.Count} session ids: {found.Count} found");
        Assert.True(found.Count == 0, $"Step 5: raw session ids left in the store after the upgrade:\n  {string.Join("\n  ", found.Take(20))}");

        // Step 6: a second run has nothing to do.
        var again = await UpgradeAsync("step 6, already upgraded");
        Assert.True(again.ExitCode == 0, $"Step 6: `upgrade` of an upgraded store must exit 0 (nothing to do):\n{again}");
    }

    private async Task<CliRun> UpgradeAsync(string when)
    {
        var run = await CliRun.RunAsync(PreviousRelease.CurrentCliDll, cluster.NewHome("cli"), ["upgrade", .. cluster.Store.CliArguments]);
        output.WriteLine($"`upgrade`, {when}:\n{run}\n");
        return run;
    }
}

public sealed class RedisUpgradeTests(LayoutTwoSideBySide<RedisUpgradeStore> cluster, ITestOutputHelper output) : UpgradeTests<RedisUpgradeStore>(cluster, output);

public sealed class PostgresUpgradeTests(LayoutTwoSideBySide<PostgresUpgradeStore> cluster, ITestOutputHelper output) : UpgradeTests<PostgresUpgradeStore>(cluster, output);
