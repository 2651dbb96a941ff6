using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// A store that hangs: a TCP listener on 127.0.0.1 that accepts every connection, reads what arrives and
/// never answers. It notes when the client closes a connection, which is how a test tells a call that
/// was cancelled (its connection closed) from one that was abandoned (left waiting).
/// </summary>
public sealed class HungServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly Task _accepting;
    private int _accepted;
    private int _closedByClient;

    public HungServer()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The port it listens on.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections the client closed so far.</summary>
    public int ClosedByClient => Volatile.Read(ref _closedByClient);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
            await Task.WhenAll(_connections);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            _connections.Add(HoldAsync(socket));
        }
    }

    private async Task HoldAsync(Socket socket)
    {
        using (socket)
        {
            var buffer = new byte[4096];
            try
            {
                // Swallow whatever the client sends; a read of 0 bytes means it closed the connection.
                while (await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) > 0)
                {
                }

                Interlocked.Increment(ref _closedByClient);
            }
            catch (SocketException)
            {
                Interlocked.Increment(ref _closedByClient);
            }
            catch (OperationCanceledException)
            {
                // The test is over.
            }
        }
    }
}
