using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.Postgres.Tests;

public sealed class PostgresSessionStoreOptionsTests
{
    private const string ConnectionString = "Host=127.0.0.1;Port=1;Username=app";

    public static TheoryData<string, Action<PostgresSessionStoreOptions>> InvalidOptions => new()
    {
        { "set ConnectionString", o => o.ConnectionString = null },
        { "not both", o => o.DataSource = Npgsql.NpgsqlDataSource.Create(ConnectionString) },
        { "not a valid Npgsql connection string", o => o.ConnectionString = "Nonsense Keyword=1" },
        { "Schema", o => o.Schema = "" },
        { "Schema", o => o.Schema = new string('s', 64) },
        { "TablePrefix", o => o.TablePrefix = new string('p', 41) },
        { "TablePrefix", o => o.TablePrefix = "a\0b" },
        { "TouchIntervalFraction", o => o.TouchIntervalFraction = 0.9 },
        { "TouchIntervalFraction", o => o.TouchIntervalFraction = double.NaN },
        { "CleanupInterval", o => o.CleanupInterval = TimeSpan.Zero },
        { "CleanupBatchSize", o => o.CleanupBatchSize = 0 },
        { "CommandTimeout", o => o.CommandTimeout = TimeSpan.FromMilliseconds(10) },
        { "Limits", o => o.Limits = null! },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Invalid_options_are_rejected_with_a_message_naming_the_option(string expected, Action<PostgresSessionStoreOptions> breakIt)
    {
        var options = new PostgresSessionStoreOptions { ConnectionString = ConnectionString };
        breakIt(options);

        var error = Assert.Throws<OptionsValidationException>(() => new PostgresSessionStore(options));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Valid_options_create_a_store_without_connecting()
    {
        await using var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = ConnectionString,
            Schema = "Sessions \"Schema\"",
            TablePrefix = "",
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });

        Assert.Equal("\"Sessions \"\"Schema\"\"\".\"sessions\"", store.SessionsTableName);
    }

    [Fact]
    public async Task The_registration_makes_the_postgres_store_the_session_store()
    {
        var services = new ServiceCollection();
        services.AddPostgresSessionStore(ConnectionString, o => o.CleanupInterval = Timeout.InfiniteTimeSpan);
        await using var provider = services.BuildServiceProvider();

        var store = provider.GetRequiredService<ISessionStore>();

        Assert.IsType<PostgresSessionStore>(store);
        Assert.Same(store, provider.GetRequiredService<PostgresSessionStore>());
    }

    [Fact]
    public async Task The_registration_validates_options_with_clear_messages()
    {
        var services = new ServiceCollection();
        services.AddPostgresSessionStore(o => o.CleanupBatchSize = -1);
        await using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ISessionStore>());

        Assert.Contains("ConnectionString", error.Message, StringComparison.Ordinal);
        Assert.Contains("CleanupBatchSize", error.Message, StringComparison.Ordinal);
    }
}
