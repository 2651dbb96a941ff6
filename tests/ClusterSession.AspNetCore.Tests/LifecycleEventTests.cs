using System.Collections.Concurrent;
using System.Net;
using ClusterSession.AspNetCore;
using ClusterSession.InMemory;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// Which requests raise which lifecycle events, in one Kestrel app over the in-memory store (which has no channel, so a
/// node gets its own events): sign-in, the cap, sign-out and revocation, each by handle. The events across processes
/// and the stores' expiries are tested in ClusterSession.MultiHost.Tests and the store test projects.
/// </summary>
public sealed class LifecycleEventTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Sign_in_cap_sign_out_and_revocation_raise_their_events_by_handle()
    {
        var observer = new Recorder();
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        await using var app = await TestApp.StartCoreAsync(
            keys,
            services =>
            {
                services.AddSingleton<ISessionLifecycleObserver>(observer);
                services.AddClusterSession(options =>
                {
                    options.UseStore(_ => new InMemorySessionStore());
                    options.MaxSessionsPerPrincipal = 1;
                });
            },
            web => web.UseClusterSession());
        var (laptop, phone, tablet) = (new Browser(), new Browser(), new Browser());

        Assert.Equal(HttpStatusCode.OK, (await laptop.PostAsync(app.Address, "/login/alice")).Status);
        await UntilAsync(() => observer.Kinds().Count(k => k == "SignedIn") == 1, "the first sign-in");
        var first = observer.Events.Single(e => e.Kind == SessionLifecycleEventKind.SignedIn).Handle;
        Assert.Contains(observer.Events, e => e is { Kind: SessionLifecycleEventKind.Created } && e.Handle == first);

        Assert.Equal(HttpStatusCode.OK, (await phone.PostAsync(app.Address, "/login/alice")).Status);
        await UntilAsync(() => observer.Events.Any(e => e.EndCause == SessionEndCause.Capped), "the cap's end of the first session");
        Assert.Equal(first, observer.Events.Single(e => e.EndCause == SessionEndCause.Capped).Handle);
        var second = observer.Events.Last(e => e.Kind == SessionLifecycleEventKind.SignedIn).Handle;
        Assert.NotEqual(first, second);

        Assert.Equal(HttpStatusCode.OK, (await phone.PostAsync(app.Address, "/logout")).Status);
        await UntilAsync(() => observer.Events.Any(e => e.EndCause == SessionEndCause.SignedOut && e.Handle == second), "the sign-out");

        Assert.Equal(HttpStatusCode.OK, (await tablet.PostAsync(app.Address, "/login/alice")).Status);
        await UntilAsync(() => observer.Kinds().Count(k => k == "SignedIn") == 3, "the third sign-in");
        var third = observer.Events.Last(e => e.Kind == SessionLifecycleEventKind.SignedIn).Handle;
        Assert.Equal(HttpStatusCode.OK, (await tablet.PostAsync(app.Address, "/c/revoke-all")).Status);
        await UntilAsync(() => observer.Events.Any(e => e.EndCause == SessionEndCause.Revoked && e.Handle == third), "the revocation");

        Assert.All(observer.Events, e => Assert.True(SessionHandle.IsWellFormed(e.Handle)));
        Assert.Equal(observer.Events.Count, observer.Events.Select(e => e.EventId).Distinct().Count());
    }

    [Fact]
    public async Task A_sign_in_refused_by_the_cap_ends_the_session_stored_for_it()
    {
        var observer = new Recorder();
        await using var app = await TestApp.StartCoreAsync(
            Directory.CreateTempSubdirectory("cs-keys-"),
            services =>
            {
                services.AddSingleton<ISessionLifecycleObserver>(observer);
                services.AddClusterSession(options =>
                {
                    options.UseStore(_ => new InMemorySessionStore());
                    options.MaxSessionsPerPrincipal = 1;
                    options.SessionCapPolicy = SessionCapPolicy.RefuseNewSession;
                });
            },
            web => web.UseClusterSession());
        Assert.Equal(HttpStatusCode.OK, (await new Browser().PostAsync(app.Address, "/login/bo")).Status);

        Assert.Equal(HttpStatusCode.Conflict, (await new Browser().PostAsync(app.Address, "/login/bo")).Status);

        await UntilAsync(() => observer.Events.Any(e => e.EndCause == SessionEndCause.Capped), "the refused sign-in's session ends");
        var refused = observer.Events.Single(e => e.EndCause == SessionEndCause.Capped).Handle;
        Assert.Contains(observer.Events, e => e.Kind == SessionLifecycleEventKind.Created && e.Handle == refused);
        Assert.DoesNotContain(observer.Events, e => e.Kind == SessionLifecycleEventKind.SignedIn && e.Handle == refused);
    }

    [Fact]
    public void A_claim_hold_under_a_second_is_refused_at_start_up()
    {
        var services = new ServiceCollection().AddClusterSession(options =>
        {
            options.UseInMemory();
            options.Events.ClaimHold = TimeSpan.FromMilliseconds(10);
        }).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<ClusterSessionOptions>>().Value);
        Assert.Contains("Events.ClaimHold", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wire_format_round_trips_and_rejects_anything_else()
    {
        var signedOut = SessionLifecycleEvent.Create(SessionLifecycleEventKind.Ended, SessionEndCause.SignedOut, SessionHandle.FromId(SessionId.Create()), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123));
        var expired = SessionLifecycleEvent.Expired(signedOut.Handle, DateTimeOffset.FromUnixTimeMilliseconds(1));

        Assert.True(SessionLifecycleEvent.TryParse(signedOut.ToWireFormat(), out var read));
        Assert.Equal(signedOut, read);
        Assert.True(SessionLifecycleEvent.TryParse(expired.ToWireFormat(), out read));
        Assert.Equal(expired, read);
        foreach (var bad in new[] { null, "", "1|a|0|-|not-a-handle|1", "2|a|0|-|" + signedOut.Handle + "|1", "1|a|9|-|" + signedOut.Handle + "|1", "1|a|2|7|" + signedOut.Handle + "|1", "1|a|0|-|" + signedOut.Handle + "|-5" })
        {
            Assert.False(SessionLifecycleEvent.TryParse(bad, out _), bad);
        }
    }

    private static Task UntilAsync(Func<bool> condition, string what) => ServerProcess.UntilAsync(() => Task.FromResult(condition()), Deadline, what);

    private sealed class Recorder : ISessionLifecycleObserver
    {
        private readonly ConcurrentQueue<SessionLifecycleEvent> _events = new();

        public IReadOnlyList<SessionLifecycleEvent> Events => [.. _events];

        public IEnumerable<string> Kinds() => _events.Select(e => e.Kind.ToString());

        public ValueTask OnSessionEventAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken)
        {
            _events.Enqueue(sessionEvent);
            return ValueTask.CompletedTask;
        }
    }
}
