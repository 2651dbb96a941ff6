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

    [Fact]
    public async Task A_store_channel_that_fails_at_start_up_neither_stops_the_app_nor_loses_later_events()
    {
        var observer = new Recorder();
        var store = new ChannelStore(new InMemorySessionStore()) { FailingSubscriptions = 2, FailingPublishes = 1 };
        await using var app = await TestApp.StartCoreAsync(
            Directory.CreateTempSubdirectory("cs-keys-"),
            services =>
            {
                services.AddSingleton<ISessionLifecycleObserver>(observer);
                services.AddClusterSession(options => options.UseStore(_ => store));
            },
            web => web.UseClusterSession());

        await UntilAsync(() => store.Subscriptions == 1, "the node subscribes after two failures");

        // The first event (Created) is refused by the store: lost and logged. The request that caused it succeeds anyway,
        // and the next event (SignedIn) goes out; events are sent one after another, so Created's fate is decided by then.
        Assert.Equal(HttpStatusCode.OK, (await new Browser().PostAsync(app.Address, "/login/cy")).Status);

        await UntilAsync(() => observer.Events.Any(e => e.Kind == SessionLifecycleEventKind.SignedIn), "the sign-in's event arrives");
        Assert.Equal(SessionLifecycleEventKind.SignedIn, Assert.Single(observer.Events).Kind);
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

    /// <summary>The in-memory store with a channel of this process only, whose first subscriptions and publishes fail.</summary>
    private sealed class ChannelStore(ISessionStore inner) : ISessionStore, ISessionEventChannel
    {
        private Action<SessionLifecycleEvent>? _handler;
        private int _subscriptions;

        public int FailingSubscriptions { get; set; }

        public int FailingPublishes { get; set; }

        public int Subscriptions => Volatile.Read(ref _subscriptions);

        public Task PublishAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken = default)
        {
            if (FailingPublishes-- > 0)
            {
                throw new SessionStoreUnavailableException("The test channel refuses this publish.");
            }

            _handler?.Invoke(sessionEvent);
            return Task.CompletedTask;
        }

        public Task<IAsyncDisposable> SubscribeAsync(Action<SessionLifecycleEvent> handler, CancellationToken cancellationToken = default)
        {
            if (FailingSubscriptions-- > 0)
            {
                throw new SessionStoreUnavailableException("The test channel refuses this subscription.");
            }

            _handler = handler;
            Interlocked.Increment(ref _subscriptions);
            return Task.FromResult<IAsyncDisposable>(new NoSubscription());
        }

        public Task<bool> TryClaimAsync(string eventId, TimeSpan hold, CancellationToken cancellationToken = default) => Task.FromResult(true);

        public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default) => inner.CreateAsync(session, cancellationToken);

        public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default) => inner.LoadAsync(id, cancellationToken);

        public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default) => inner.LoadAsync(id, options, cancellationToken);

        public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default) => inner.SaveAsync(changes, cancellationToken);

        public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(id, cancellationToken);

        public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default) => inner.DeleteByHandleAsync(principal, handle, cancellationToken);

        public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default) => inner.ChangeIdAsync(oldId, newId, cancellationToken);

        public ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
            => inner.CompareAndSetAttributeAsync(id, name, expected, replacement, cancellationToken);

        public ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default) => inner.FindByPrincipalAsync(principal, cancellationToken);

        public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
            => inner.AdmitAsync(id, principal, maxSessions, policy, cancellationToken);

        public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);

        private sealed class NoSubscription : IAsyncDisposable
        {
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
