// 4 KiB random reads, one thread: Qcow on a fully cached qcow2 image vs pread on the raw file,
// the same offsets in the same order, after a warm-up pass over both.
using System;
using System.Diagnostics;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Bench;

internal static class RandomReads
{
    public static (double QcowPerSecond, double RawPerSecond) Measure(string qcow2, string raw, int count)
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

        var watch = Stopwatch.StartNew();
        foreach (long o in offsets)
        {
            image.Read(o, buffer);
        }

        double qcow = count / watch.Elapsed.TotalSeconds;
        watch.Restart();
        foreach (long o in offsets)
        {
            RandomAccess.Read(rawFile, buffer, o);
        }

        return (qcow, count / watch.Elapsed.TotalSeconds);
    }
}
