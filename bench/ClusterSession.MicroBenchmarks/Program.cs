using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(ClusterSession.MicroBenchmarks.SessionIdBenchmarks).Assembly).Run(args);
