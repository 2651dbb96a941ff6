using Xunit.Abstractions;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// The previous release (the first line of eng/baseline-release.txt) and the current code on one store, as during a rolling
/// deploy (DESIGN.md, Upgrades: release N reads and writes what N−1 wrote, and N−1 keeps serving sessions N wrote):
/// both serve the same users side by side with no sign-out and no lost write; `clustersession upgrade` has nothing to do;
/// when the previous release stops (the deploy's last old node), the current nodes serve every user with every value.
/// One class per store; each names only its store.
/// </summary>
public abstract class RollingDeployTests<TStore>(PreviousReleaseSideBySide<TStore> cluster, ITestOutputHelper output) : IClassFixture<PreviousReleaseSideBySide<TStore>>
    where TStore : UpgradeStore, new()
{
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Previous_release_and_current_code_serve_the_same_users_side_by_side_and_after_the_deploy_with_no_sign_out_and_no_lost_write()
    {
        var mixed = await cluster.MixedPhase;
        output.WriteLine($"Mixed phase ({cluster.PreviousSide} beside {cluster.CurrentSide(1)}): {mixed.Summary}");
        Assert.True(mixed.AllKept, $"Mixed phase: {mixed.Summary}");

        var upgrade = await CliRun.RunAsync(PreviousRelease.CurrentCliDll, cluster.NewHome("cli"), ["upgrade", .. cluster.Store.CliArguments]);
        output.WriteLine($"`upgrade` while both serve:\n{upgrade}\n");
        Assert.True(upgrade.ExitCode == 0, $"`upgrade` between the previous release and the current code has nothing to move and must exit 0:\n{upgrade}");

        // The deploy's last old node stops; both current nodes serve every device with every value.
        Assert.Equal(0, await cluster.Previous.TerminateAsync(StopDeadline));
        var after = new Traffic();
        await Task.WhenAll(cluster.Devices.Select(async device =>
        {
            await after.CheckAsync(device, cluster.CurrentSide(1));
            await after.CheckAsync(device, cluster.CurrentSide(2));
            await after.WriteAsync(device, cluster.CurrentSide(2), "after-deploy-2", $"device {device.Number} wrote this after the deploy");
            await after.CheckValuesAsync(device, cluster.CurrentSide(1));
        }));
        output.WriteLine($"After the deploy: {after.Summary}");
        Assert.True(after.AllKept, $"After the deploy: {after.Summary}");

        var owners = cluster.SessionIdOwners();
        var found = RawSessionIds.Find(await cluster.Store.DumpAsync(), owners);
        Assert.True(found.Count == 0, $"Raw session ids in the store:\n  {string.Join("\n  ", found.Take(20))}");
    }
}

public sealed class RedisRollingDeployTests(PreviousReleaseSideBySide<RedisUpgradeStore> cluster, ITestOutputHelper output)
    : RollingDeployTests<RedisUpgradeStore>(cluster, output);

public sealed class PostgresRollingDeployTests(PreviousReleaseSideBySide<PostgresUpgradeStore> cluster, ITestOutputHelper output)
    : RollingDeployTests<PostgresUpgradeStore>(cluster, output);
