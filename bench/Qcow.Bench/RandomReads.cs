// 4 KiB random reads: Qcow on a fully cached qcow2 image vs pread on the raw file, the same
// offsets in the same order, after a warm-up pass over both; on one thread, and on two threads
// sharing one open image (each takes every other offset), which shows whether reads scale. The
// four take turns for a number of rounds; each figure is the median of its rounds.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Bench;

/// <summary>Reads per second, on one thread and on two.</summary>
internal sealed record ReadRates(double Qcow, double Raw, double QcowTwoThreads, double RawTwoThreads);

internal static class RandomReads
{
    public static ReadRates Measure(string qcow2, string raw, int count, int rounds)
    {
        using QcowImage image = QcowImage.Open(qcow2, new QcowOpenOptions { ReadOnly = true });
        using SafeFileHandle rawFile = File.OpenHandle(raw);
        long blocks = image.Length / 4096;
        long[] offsets = new long[count];
        var random = new Random(1);
        for (int i = 0; i < count; i++)
        {
            offsets[i] = random.NextInt64(blocks) * 4096;
        }

        byte[] buffer = new byte[4096];
        for (long o = 0; o < image.Length; o += 1 << 20)
        {
            image.Read(o, buffer);
            RandomAccess.Read(rawFile, buffer, o);
        }

        void ReadQcow(int first, int step)
        {
            byte[] block = new byte[4096];
            for (int i = first; i < offsets.Length; i += step)
            {
                image.Read(offsets[i], block);
            }
        }

        void ReadRaw(int first, int step)
        {
            byte[] block = new byte[4096];
            for (int i = first; i < offsets.Length; i += step)
            {
                RandomAccess.Read(rawFile, block, offsets[i]);
            }
        }

        var qcow = new List<double>();
        var rawRates = new List<double>();
        var qcowTwo = new List<double>();
        var rawTwo = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            qcow.Add(Rate(count, 1, ReadQcow));
            rawRates.Add(Rate(count, 1, ReadRaw));
            qcowTwo.Add(Rate(count, 2, ReadQcow));
            rawTwo.Add(Rate(count, 2, ReadRaw));
        }

        return new ReadRates(Median(qcow), Median(rawRates), Median(qcowTwo), Median(rawTwo));
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    /// <summary>Reads per second of <paramref name="threads"/> threads, thread t reading offsets t, t + threads, ….</summary>
    private static double Rate(int count, int threads, Action<int, int> read)
    {
        var workers = new Thread[threads];
        using var start = new Barrier(threads + 1);
        for (int t = 0; t < threads; t++)
        {
            int first = t;
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                read(first, threads);
            });
            workers[t].Start();
        }

        start.SignalAndWait();
        var watch = Stopwatch.StartNew();
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        return count / watch.Elapsed.TotalSeconds;
    }
}
