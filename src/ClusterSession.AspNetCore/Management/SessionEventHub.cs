using System.Threading.Channels;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.Extensions.Hosting;

namespace ClusterSession.AspNetCore.Management;

/// <summary>
/// Session lifecycle events between the request path, the store and the application's <see cref="ISessionLifecycleObserver"/>s.
/// The request path only queues an event (<see cref="Raise"/>, no store call on the request); a background loop sends it
/// through the store's <see cref="ISessionEventChannel"/>, and the subscription feeds what every node sent (and the store's
/// expiries) to a second loop that claims it (<see cref="SessionEventDelivery.OneNode"/>) and calls the observers. A store
/// without a channel (the in-memory one) delivers this node's own events to this node.
/// </summary>
internal sealed class SessionEventHub : IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    private readonly SessionRuntime _runtime;
    private readonly ISessionLifecycleObserver[] _observers;
    private readonly ISessionEventChannel? _channel;
    private readonly Channel<SessionLifecycleEvent> _outgoing = Channel.CreateUnbounded<SessionLifecycleEvent>(new() { SingleReader = true });
    private readonly Channel<SessionLifecycleEvent> _incoming = Channel.CreateUnbounded<SessionLifecycleEvent>(new() { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private Task _loops = Task.CompletedTask;
    private IAsyncDisposable? _subscription;
    private int _disposed;

    public SessionEventHub(SessionRuntime runtime, IEnumerable<ISessionLifecycleObserver> observers)
    {
        _runtime = runtime;
        _observers = [.. observers];
        _channel = runtime.Store as ISessionEventChannel;
    }

    /// <summary>Whether events flow at all: only when the application registered an observer.</summary>
    public bool Enabled => _observers.Length > 0;

    /// <summary>Queues an event this node caused; never blocks and never throws.</summary>
    public void Raise(SessionLifecycleEventKind kind, SessionEndCause? cause, string handle)
    {
        if (Enabled)
        {
            _outgoing.Writer.TryWrite(SessionLifecycleEvent.Create(kind, cause, handle, _runtime.Time.GetUtcNow()));
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        var subscribed = _channel is null || await TrySubscribeAsync(cancellationToken).ConfigureAwait(false);
        _loops = Task.WhenAll(
            Task.Run(SendLoopAsync, CancellationToken.None),
            Task.Run(DeliverLoopAsync, CancellationToken.None),
            subscribed ? Task.CompletedTask : Task.Run(SubscribeLoopAsync, CancellationToken.None));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _outgoing.Writer.TryComplete();
        _incoming.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loops.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (Interlocked.Exchange(ref _subscription, null) is { } subscription)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await StopAsync(CancellationToken.None).ConfigureAwait(false);
            _stopping.Dispose();
        }
    }

    private async Task<bool> TrySubscribeAsync(CancellationToken cancellationToken, int failures = 1)
    {
        try
        {
            _subscription = await _channel!.SubscribeAsync(e => _incoming.Writer.TryWrite(e), cancellationToken).ConfigureAwait(false);
            return true;
        }
#pragma warning disable CA1031 // Whatever the store throws, the node keeps serving and tries again in the background.
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
#pragma warning restore CA1031
        {
            Log.LifecycleSubscribeFailed(_runtime.Logger, ex, RetryDelay(failures));
            return false;
        }
    }

    private async Task SubscribeLoopAsync()
    {
        for (var failures = 1; !_stopping.IsCancellationRequested; failures++)
        {
            try
            {
                await Task.Delay(RetryDelay(failures), _runtime.Time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (await TrySubscribeAsync(_stopping.Token, failures + 1).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    private async Task SendLoopAsync()
    {
        await foreach (var sessionEvent in _outgoing.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (_channel is null)
            {
                _incoming.Writer.TryWrite(sessionEvent);
                continue;
            }

            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                deadline.CancelAfter(_runtime.Options.StoreTimeout);
                await _channel.PublishAsync(sessionEvent, deadline.Token).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A lost event is logged; the loop must go on with the next one.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.LifecycleEventLost(_runtime.Logger, ex, sessionEvent.Kind);
            }
        }
    }

    private async Task DeliverLoopAsync()
    {
        var oneNode = _runtime.Options.Events.Delivery == SessionEventDelivery.OneNode && _channel is not null;
        await foreach (var sessionEvent in _incoming.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (oneNode && !await ClaimAsync(sessionEvent).ConfigureAwait(false))
            {
                continue;
            }

            foreach (var observer in _observers)
            {
                try
                {
                    await observer.OnSessionEventAsync(sessionEvent, _stopping.Token).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // An observer's failure is the application's; the next event and observer still follow.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.LifecycleObserverFailed(_runtime.Logger, ex, observer.GetType().Name, sessionEvent.Kind);
                }
            }
        }
    }

    /// <summary>
    /// Whether this node handles the event. A claim that cannot be made (the store is down) counts as won: the event may then
    /// be handled by more than one node, never by none (at least once).
    /// </summary>
    private async Task<bool> ClaimAsync(SessionLifecycleEvent sessionEvent)
    {
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            deadline.CancelAfter(_runtime.Options.StoreTimeout);
            return await _channel!.TryClaimAsync(sessionEvent.EventId, _runtime.Options.Events.ClaimHold, deadline.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Any failure of the claim means "handle it here": at least once.
        catch (Exception) when (!_stopping.IsCancellationRequested)
#pragma warning restore CA1031
        {
            return true;
        }
    }

    private static TimeSpan RetryDelay(int failures)
    {
        var delay = TimeSpan.FromMilliseconds(100 * Math.Pow(2, Math.Min(failures - 1, 10)));
        return delay < MaxRetryDelay ? delay : MaxRetryDelay;
    }
}
