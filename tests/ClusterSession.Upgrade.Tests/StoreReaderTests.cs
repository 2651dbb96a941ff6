using Xunit.Abstractions;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// Issue 20: whoever can only read the store (a replica, a backup, a monitoring user) takes over no session and learns
/// from key names nobody who is signed in. Three users sign in to the real ClusterDemo on a real store
/// (<see cref="SignedInDemo{TStore}"/>); the attacker dumps the whole store, looks for any piece of the cookies the
/// browsers hold, and replays every token-shaped string of the dump as cookies against the demo.
/// One class per store; each names only its store.
/// </summary>
public abstract class StoreReaderTests<TStore>(SignedInDemo<TStore> demo, ITestOutputHelper output) : IClassFixture<SignedInDemo<TStore>>
    where TStore : UpgradeStore, new()
{
    protected SignedInDemo<TStore> SignedIn => demo;

    [Fact]
    public async Task Store_reader_finds_no_piece_of_any_session_id_or_cookie_the_browsers_hold()
        => AssertNoPieceOfAnyCookie(await demo.Dump, "the dump");

    [Fact]
    public async Task Store_reader_replaying_every_token_of_the_store_as_cookies_takes_over_no_session()
        => await AssertNoTakeoverAsync(await demo.Dump, "the dump");

    protected void AssertNoPieceOfAnyCookie(IReadOnlyList<StoredBytes> dump, string what)
    {
        var found = StoreReader.FindPieces(dump, demo.Cookies);
        var cookiesFound = demo.Cookies.Where(c => found.Any(f => f.StartsWith($"a piece of {c.Owner} (as ", StringComparison.Ordinal))).ToList();
        var sessionIds = demo.Cookies.Count(c => c.Owner.Contains(Demo.Tests.DemoClient.CookieName, StringComparison.Ordinal));
        var sessionIdsFound = cookiesFound.Count(c => c.Owner.Contains(Demo.Tests.DemoClient.CookieName, StringComparison.Ordinal));
        var summary = $"{what}: {dump.Count} items searched for {StoreReader.PieceChars}-character pieces of the {demo.Cookies.Count} cookie values " +
            $"the browsers hold or held: {sessionIdsFound} of {sessionIds} session ids and {cookiesFound.Count - sessionIdsFound} of " +
            $"{demo.Cookies.Count - sessionIds} other cookies found, in {found.Count} places";
        output.WriteLine(summary + string.Concat(found.Take(30).Select(f => "\n  " + f)));
        Assert.True(found.Count == 0, summary + string.Concat(found.Take(30).Select(f => "\n  " + f)));
    }

    protected async Task AssertNoTakeoverAsync(IReadOnlyList<StoredBytes> dump, string what)
    {
        var tokens = StoreReader.Tokens(dump);
        var replay = await Replay.RunAsync(demo.Node.Address, tokens, demo.Victims);
        var summary = $"{what}: {dump.Count} items, {replay.Summary(demo.Victims.Count)}";
        output.WriteLine(summary);
        Assert.True(tokens.Count > 0, $"{what} holds no token-shaped string at all: the dump read nothing, so the replay proves nothing.");
        Assert.True(replay.Takeovers.Count == 0, summary);
        Assert.True(replay.Unexpected.Count == 0, summary);
    }
}

/// <summary>On Redis, also the key names: every tool that lists keys shows them.</summary>
public abstract class RedisStoreReaderTests<TStore>(SignedInDemo<TStore> demo, ITestOutputHelper output) : StoreReaderTests<TStore>(demo, output)
    where TStore : UpgradeStore, new()
{
    private readonly ITestOutputHelper _output = output;

    [Fact]
    public async Task Store_reader_finds_no_user_name_in_any_key_name()
    {
        var dump = await SignedIn.Dump;
        var keys = dump.Count(item => item.Location.StartsWith(RedisDump.KeyLocation, StringComparison.Ordinal));
        var found = StoreReader.KeyNamesNaming(dump, SignedInDemo<TStore>.Users);
        var summary = $"{keys} key names searched for the signed-in users ({string.Join(", ", SignedInDemo<TStore>.Users)}): {found.Count} name a user";
        _output.WriteLine(summary + string.Concat(found.Select(f => "\n  " + f)));
        Assert.True(keys > 0, "The dump holds no key: it read nothing.");
        Assert.True(found.Count == 0, summary + string.Concat(found.Select(f => "\n  " + f)));
    }
}

public sealed class RedisServerStoreReaderTests(SignedInDemo<RedisUpgradeStore> demo, ITestOutputHelper output)
    : RedisStoreReaderTests<RedisUpgradeStore>(demo, output);

public sealed class RedisClusterStoreReaderTests(SignedInDemo<RedisClusterUpgradeStore> demo, ITestOutputHelper output)
    : RedisStoreReaderTests<RedisClusterUpgradeStore>(demo, output);

/// <summary>On PostgreSQL, also a backup: <c>pg_dump --data-only</c> of the database, beside every row of every table.</summary>
public sealed class PostgresStoreReaderTests(SignedInDemo<PostgresUpgradeStore> demo, ITestOutputHelper output)
    : StoreReaderTests<PostgresUpgradeStore>(demo, output)
{
    [Fact]
    public async Task Store_reader_with_a_pg_dump_finds_no_piece_of_any_session_id_or_cookie_the_browsers_hold()
        => AssertNoPieceOfAnyCookie(await SignedIn.Store.PgDumpAsync(), "pg_dump --data-only");

    [Fact]
    public async Task Store_reader_replaying_every_token_of_a_pg_dump_as_cookies_takes_over_no_session()
        => await AssertNoTakeoverAsync(await SignedIn.Store.PgDumpAsync(), "pg_dump --data-only");
}
