using BenchmarkDotNet.Attributes;

namespace ClusterSession.MicroBenchmarks;

/// <summary>Change tracking over the benchmark workload: a session of 10 attributes of 100 bytes.</summary>
[MemoryDiagnoser]
public class TrackedSessionBenchmarks
{
    private SessionSnapshot _snapshot = null!;
    private byte[] _value = null!;

    [GlobalSetup]
    public void Setup()
    {
        var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (var i = 0; i < 10; i++)
        {
            attributes["a" + i] = new byte[100];
        }

        var now = DateTimeOffset.UtcNow;
        _snapshot = new SessionSnapshot(SessionId.Create(), now, now, TimeSpan.FromMinutes(20), now.AddHours(12), null, 1, attributes);
        _value = new byte[100];
    }

    /// <summary>A read request: wrap the loaded snapshot, read one attribute, find nothing to save.</summary>
    [Benchmark]
    public bool Read_one_attribute()
    {
        var session = new TrackedSession(_snapshot);
        return session.TryGetValue("a3", out _) && !session.HasChanges;
    }

    /// <summary>A write request: set one attribute and build the change set that is sent to the store.</summary>
    [Benchmark]
    public SessionChanges Write_one_attribute()
    {
        var session = new TrackedSession(_snapshot);
        session.Set("a3", _value);
        return session.GetChanges();
    }

    [Benchmark]
    public int Enumerate_keys()
    {
        var session = new TrackedSession(_snapshot);
        session.Set("b0", _value);
        session.Remove("a1");
        var count = 0;
        foreach (var _ in session.Keys)
        {
            count++;
        }

        return count;
    }
}
