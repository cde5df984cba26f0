// The fuzz run: FuzzDriver over cases [first, first + count) of one run seed, on every core, with
// a watchdog for a case that hangs. 100,000 cases under CI, 5,000 otherwise; the run seed is fixed
// by default, so that CI runs the same cases every time. Environment variables change that:
//   QCOW_FUZZ_CASES=10000000                            a long run
//   QCOW_FUZZ_SEED=<n>                                  other cases
//   QCOW_FUZZ_SEED=<n> QCOW_FUZZ_FIRST=<i> QCOW_FUZZ_CASES=1   replays case i (what it does goes to the
//                                                       test output: --logger "console;verbosity=detailed")
// with: dotnet test tests/Examples -c Release --filter FullyQualifiedName~Fuzz
// The run's one-line summary goes to fuzz-report.txt next to the test assembly.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Qcow.Examples.Oracle;
using Xunit;
using Xunit.Abstractions;

namespace Qcow.Examples.Reliability;

public sealed class FuzzTests
{
    private const ulong DefaultSeed = 4;
    private const int MaxFailures = 10;

    /// <summary>A case takes under a millisecond; one that runs this long is taken to hang.</summary>
    private static readonly TimeSpan s_hangLimit = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;

    public FuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task MutatedImages_WorkOrThrowQcowFormatException()
    {
        ulong seed = (ulong)Setting("QCOW_FUZZ_SEED", (long)DefaultSeed);
        long first = Setting("QCOW_FUZZ_FIRST", 0);
        long count = Setting("QCOW_FUZZ_CASES", Qemu.UnderCi ? 100_000 : 5_000);
        bool replay = count <= MaxFailures;
        var workers = new ConcurrentBag<Worker>();
        var failures = new ConcurrentQueue<string>();
        long opened = 0;
        long ran = 0;
        var clock = Stopwatch.StartNew();

        Task loop = Task.Run(() => Parallel.For(
            first,
            first + count,
            () =>
            {
                var worker = new Worker();
                workers.Add(worker);
                return worker;
            },
            (i, state, worker) =>
            {
                worker.Start(i);
                FuzzDriver.Outcome outcome = FuzzDriver.Run(seed, i, worker.Buffer, null);
                worker.Finish();
                Interlocked.Increment(ref ran);
                if (outcome.Opened)
                {
                    Interlocked.Increment(ref opened);
                }

                if (outcome.Failure != null || replay)
                {
                    string report = Describe(seed, i, outcome.Failure);
                    if (outcome.Failure != null)
                    {
                        failures.Enqueue(report);
                    }

                    lock (_output)
                    {
                        _output.WriteLine(report);
                    }
                }

                if (failures.Count >= MaxFailures)
                {
                    state.Stop();
                }

                return worker;
            },
            _ => { }));

        while (await Task.WhenAny(loop, Task.Delay(TimeSpan.FromSeconds(1))) != loop)
        {
            Worker? stuck = workers.FirstOrDefault(w => w.Running > s_hangLimit);
            if (stuck != null)
            {
                // The stuck thread cannot be stopped; the test fails without waiting for it.
                failures.Enqueue($"case {stuck.Case} hangs (still running after {s_hangLimit.TotalSeconds} s)\n  {Replay(seed, stuck.Case)}");
                break;
            }
        }

        if (loop.IsCompleted)
        {
            await loop;
        }

        string summary = $"fuzz: {ran} cases, {opened} opened, {ran - opened} refused, {failures.Count} failures (seed {seed}, {clock.Elapsed.TotalSeconds:0} s)";
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "fuzz-report.txt"), summary + Environment.NewLine);
        Console.WriteLine(summary);
        Assert.True(failures.IsEmpty, summary + "\n" + string.Join("\n", failures.Take(MaxFailures)));
        Assert.Equal(count, ran);
    }

    /// <summary>What a case does, step by step (run again with a trace), what went wrong, and how to replay it.</summary>
    private static string Describe(ulong seed, long index, string? failure)
    {
        var trace = new List<string>();
        FuzzDriver.Run(seed, index, new byte[FuzzDriver.BufferBytes], trace);
        return $"case {index}: {failure ?? "no failure"}\n  {string.Join("\n  ", trace)}\n  {Replay(seed, index)}";
    }

    private static string Replay(ulong seed, long index) =>
        $"replay: QCOW_FUZZ_SEED={seed} QCOW_FUZZ_FIRST={index} QCOW_FUZZ_CASES=1 dotnet test tests/Examples -c Release --filter FullyQualifiedName~Fuzz";

    private static long Setting(string name, long otherwise) =>
        long.TryParse(Environment.GetEnvironmentVariable(name), out long value) ? value : otherwise;

    /// <summary>One worker thread of the run: its buffer, and which case it runs since when, for the watchdog.</summary>
    private sealed class Worker
    {
        private long _case = -1;
        private long _started;

        public byte[] Buffer { get; } = new byte[FuzzDriver.BufferBytes];

        public long Case => Volatile.Read(ref _case);

        public TimeSpan Running => Case < 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(Volatile.Read(ref _started));

        public void Start(long index)
        {
            Volatile.Write(ref _started, Stopwatch.GetTimestamp());
            Volatile.Write(ref _case, index);
        }

        public void Finish() => Volatile.Write(ref _case, -1);
    }
}
