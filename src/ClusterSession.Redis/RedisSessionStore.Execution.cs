using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClusterSession.Redis;
/// <content>Running commands: one deadline per operation, retries of commands Redis did not run, writes that wait for replicas, and the one catch.</content>
public sealed partial class RedisSessionStore
{
    /// <summary>
    /// Runs one store operation, every round trip and every retry of it, under the store's deadline, and maps every
    /// way Redis can fail to <see cref="SessionStoreUnavailableException"/> (the one catch of the store). The
    /// caller's own cancellation stays an <see cref="OperationCanceledException"/>.
    /// </summary>
    private async ValueTask<TResult> RunAsync<TState, TResult>(string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.OperationTimeout);
        try
        {
            if (Volatile.Read(ref _layout) == (int)RedisLayout.Unknown)
            {
                // First use: read which layout the store is on (docs/redis-data-model.md, "Layouts").
                await EnsureLayoutAsync(deadline.Token).ConfigureAwait(false);
            }

            return await body(state, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up: whatever the command's last failure was, the caller sees its own cancellation.
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex) when (RedisFailures.ToUnavailable(
            ex, operation, deadline.IsCancellationRequested, _options.OperationTimeout, Stopwatch.GetElapsedTime(started), _scrubPrefix) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>
    /// One command (or pipelined batch) on the store's connection, ended by <paramref name="token"/> (the operation's
    /// one deadline). A command Redis certainly did not run (refused by a replica or a loading node, redirected, no
    /// primary known yet) makes the connection re-discover the topology and is sent again until the deadline, but only
    /// while some node is connected: with nothing connected, Redis is down and the command fails at once.
    /// </summary>
    private async Task<TResult> CommandAsync<TState, TResult>(Func<IDatabase, TState, Task<TResult>> command, TState state, CancellationToken token)
    {
        for (var attempt = 1; ; attempt++)
        {
            var multiplexer = await _connection.GetAsync(token).ConfigureAwait(false);
            if (_evictionPolicyChecked == 0 && Interlocked.Exchange(ref _evictionPolicyChecked, 1) == 0)
            {
                _ = RedisEvictionPolicyCheck.WarnIfUnfitAsync(multiplexer, _logger);
            }

            Task<TResult>? pending = null;
            try
            {
                if (_near is { } near)
                {
                    await near.EnsureStartedAsync(multiplexer, token).ConfigureAwait(false);
                }

                pending = command(multiplexer.GetDatabase(), state);
                return await pending.WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (pending is { IsCompleted: false })
            {
                // StackExchange.Redis cannot recall a command once written; its own AsyncTimeout (set to OperationTimeout
                // on connections the store creates) completes it. Observe its failure so it is never unobserved.
                _ = pending.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                throw;
            }
            catch (Exception ex) when (ShouldRetry(ex, multiplexer))
            {
                try
                {
                    await Task.Delay(RetryDelay(attempt), token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The deadline passed while waiting to retry: the failure to report is the command's, not the wait's.
                    ExceptionDispatchInfo.Throw(ex);
                }
            }
        }
    }

    private bool ShouldRetry(Exception ex, IConnectionMultiplexer multiplexer)
    {
        if (RedisFailures.TopologyChanged(ex))
        {
            _topology.Request(multiplexer, ex);
        }

        return RedisFailures.NotApplied(ex) && multiplexer.IsConnected;
    }

    // 20, 40, 80 ... ms, at most 250 ms: a failover settles in seconds, and the deadline ends the retries.
    private static TimeSpan RetryDelay(int attempt) => TimeSpan.FromMilliseconds(Math.Min(250, 10 << Math.Min(attempt, 5)));

    /// <summary>A write script on the primary, followed by WAIT in the same round trip when <see cref="RedisSessionStoreOptions.WaitForReplicas"/> asks for it.</summary>
    private Task<RedisResult> WriteAsync(string script, RedisKey key, RedisValue[] args, CancellationToken token)
        => WriteAsync(script, [key], args, token);

    /// <summary><see cref="WriteAsync(string, RedisKey, RedisValue[], CancellationToken)"/> on keys of one slot (a session's keys in both layouts).</summary>
    private Task<RedisResult> WriteAsync(string script, RedisKey[] keys, RedisValue[] args, CancellationToken token)
        => CommandAsync(
            static (db, s) => s.Wait is { } wait ? wait.EvaluateAsync(db, s.Script, s.Keys, s.Args) : db.ScriptEvaluateAsync(s.Script, s.Keys, s.Args, Primary),
            (Wait: _replicaWait, Script: script, Keys: keys, Args: args),
            token);
}
