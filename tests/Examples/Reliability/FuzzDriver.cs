// One fuzz case: a seeded mutant of a seed image is opened read-only (read in bounded chunks,
// then checked) and, on a copy, read-write (written, zeroed, discarded, read, flushed, checked,
// closed). The rule: every operation works or throws QcowFormatException, and a refused
// read-write open leaves the image byte-identical. Any other exception,
// more than AllocationCap bytes allocated by the case, or a write the storage refuses (past the
// file's length + GrowthLimit, or to the read-only open) is a failure.
using System;
using System.Collections.Generic;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow.Examples.Reliability;

internal static class FuzzDriver
{
    /// <summary>What one case may allocate on its thread, open, reads, check and writes together.</summary>
    private const long AllocationCap = 256L << 20;

    /// <summary>How far past its length the writable copy may grow before the storage refuses.</summary>
    private const long GrowthLimit = 64L << 20;

    /// <summary>Bytes of the buffer each worker lends the cases it runs: the largest read or write.</summary>
    public const int BufferBytes = 256 << 10;

    /// <summary>Guest bytes read from the start of the disk; a hostile size may claim petabytes.</summary>
    private const long ReadCap = 4L << 20;

    private const string ImageName = "fuzz.qcow2";

    private static readonly DeviceOptions s_readOnly = new(false, false, 1 << 20, NullLogger.Instance);
    private static readonly DeviceOptions s_writable = new(true, false, 1 << 20, NullLogger.Instance);
    private static readonly DeviceOptions s_writableForced = new(true, true, 1 << 20, NullLogger.Instance);

    /// <summary>What a case came to: whether the mutant opened read-only, and the failure, if any.</summary>
    public readonly record struct Outcome(bool Opened, string? Failure);

    /// <summary>Runs case <paramref name="index"/> of run <paramref name="seed"/>; with a trace, says what it does, step by step.</summary>
    public static Outcome Run(ulong seed, long index, byte[] buffer, List<string>? trace)
    {
        var rng = new Random(CaseSeed(seed, index));
        FuzzTargets targets = FuzzTargets.All[rng.Next(FuzzTargets.All.Count)];
        trace?.Add($"seed image: {targets.Seed.Name}");
        byte[] image = FuzzMutator.Mutate(targets, rng, trace);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var readOnly = new MemoryStorage(ImageName, image, canWrite: false);
        var writable = new MemoryStorage(ImageName, (byte[])image.Clone(), canWrite: true, limit: image.Length + GrowthLimit);
        bool opened = false;
        string? failure = null;
        try
        {
            opened = ReadOnly(readOnly, rng, buffer, trace);
            ReadWrite(writable, image, rng, buffer, trace);
        }
        catch (Exception e)
        {
            failure = $"{e.GetType().Name} escaped: {e}";
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        failure ??= readOnly.Refused ?? writable.Refused;
        failure ??= allocated > AllocationCap ? $"the case allocated {allocated >> 20} MiB, more than the cap of {AllocationCap >> 20} MiB" : null;
        return new Outcome(opened, failure);
    }

    /// <summary>Reads the first ReadCap bytes in chunks, four random places and the end, then checks; false when the open is refused.</summary>
    private static bool ReadOnly(MemoryStorage storage, Random rng, byte[] buffer, List<string>? trace)
    {
        QcowDevice device;
        try
        {
            trace?.Add("open read-only");
            device = QcowDevice.Open(storage, s_readOnly, FuzzSeeds.OpenBacking);
        }
        catch (QcowFormatException e)
        {
            trace?.Add($"  refused: {e.Detail}");
            return false;
        }

        using (device)
        {
            trace?.Add($"  virtual size 0x{device.Length:x}, {device.Layout.ClusterSize} B clusters");
            long cap = Math.Min(device.Length, ReadCap);
            for (long at = 0; at < cap; at += buffer.Length)
            {
                Read(device, at, (int)Math.Min(buffer.Length, cap - at), buffer, trace);
            }

            for (int i = 0; i < 5 && device.Length > 0; i++)
            {
                long at = i == 4 ? device.Length - 1 : rng.NextInt64(device.Length);
                Read(device, at, (int)Math.Min(64 << 10, device.Length - at), buffer, trace);
            }

            Check(device, trace);
        }

        return true;
    }

    /// <summary>
    /// Opens a copy read-write (forcing past the corrupt bit one time in four) and changes it, a
    /// step at a time. A refused open must leave the copy as it was, <paramref name="original"/>.
    /// </summary>
    private static void ReadWrite(MemoryStorage storage, byte[] original, Random rng, byte[] buffer, List<string>? trace)
    {
        QcowDevice device;
        try
        {
            bool force = rng.Next(4) == 0;
            trace?.Add(force ? "open read-write, forced" : "open read-write");
            device = QcowDevice.Open(storage, force ? s_writableForced : s_writable, FuzzSeeds.OpenBacking);
        }
        catch (QcowFormatException e)
        {
            trace?.Add($"  refused: {e.Detail}");
            if (!storage.ToArray().AsSpan().SequenceEqual(original))
            {
                throw new InvalidOperationException($"the read-write open was refused ({e.Detail}) but changed the image");
            }

            return;
        }

        try
        {
            int cs = device.Layout.ClusterSize;
            for (int i = rng.Next(2, 7); i > 0 && device.Length > 0; i--)
            {
                long at = rng.NextInt64(rng.Next(3) == 0 ? device.Length : Math.Min(device.Length, ReadCap));
                if (rng.Next(2) == 0)
                {
                    at &= ~(long)(cs - 1);
                }

                int n = (int)Math.Min(device.Length - at, rng.Next(2) == 0 ? rng.Next(1, 3 * cs) : rng.Next(1, BufferBytes));
                Change(device, rng.Next(6), at, n, rng, buffer, trace);
            }

            trace?.Add("flush");
            Guard(device.Flush, trace);
            Check(device, trace);
        }
        finally
        {
            trace?.Add("close");
            Guard(device.Dispose, trace);
        }
    }

    private static void Change(QcowDevice device, int kind, long at, int n, Random rng, byte[] buffer, List<string>? trace)
    {
        switch (kind)
        {
            case 0:
            case 1:
                n = Math.Min(n, buffer.Length);
                byte fill = (byte)rng.Next(256);
                buffer.AsSpan(0, n).Fill(fill);
                trace?.Add($"write 0x{fill:x2} at 0x{at:x}, 0x{n:x} bytes");
                Guard(() => device.Write(at, buffer.AsSpan(0, n)), trace);
                break;
            case 2:
                trace?.Add($"write zeroes at 0x{at:x}, 0x{n:x} bytes");
                Guard(() => device.WriteZeroes(at, n), trace);
                break;
            case 3:
                trace?.Add($"discard at 0x{at:x}, 0x{n:x} bytes");
                Guard(() => device.Discard(at, n), trace);
                break;
            case 4:
                Read(device, at, Math.Min(n, buffer.Length), buffer, trace);
                break;
            default:
                trace?.Add("flush");
                Guard(device.Flush, trace);
                break;
        }
    }

    private static void Read(QcowDevice device, long at, int n, byte[] buffer, List<string>? trace)
    {
        trace?.Add($"read at 0x{at:x}, 0x{n:x} bytes");
        Guard(() => device.Read(at, buffer.AsSpan(0, n)), trace);
    }

    /// <summary>qcow v1 has no refcounts to check: its Check throws NotSupportedException, as documented.</summary>
    private static void Check(QcowDevice device, List<string>? trace)
    {
        if (device.Layout.Version >= 2)
        {
            trace?.Add("check");
            Guard(() => device.Check(), trace);
        }
    }

    /// <summary>Runs one step; a QcowFormatException is an allowed answer, and the case goes on.</summary>
    private static void Guard(Action step, List<string>? trace)
    {
        try
        {
            step();
        }
        catch (QcowFormatException e)
        {
            trace?.Add($"  QcowFormatException: {e.Detail}");
        }
    }

    /// <summary>A case's Random seed: SplitMix64 of the run's seed and the case number.</summary>
    private static int CaseSeed(ulong seed, long index)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (ulong)(index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) & int.MaxValue);
    }
}
