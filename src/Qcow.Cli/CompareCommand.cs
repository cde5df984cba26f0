// qcow compare: qemu-img compare's verdicts, messages and exit codes (0 identical, 1 different,
// 2 error). Ranges both images read as zeros are not read; a range only one image allocates
// must read as zeros; with -s the sizes and the block status must match too.
using System;
using System.Collections.Generic;
using System.IO;
using Qcow.IO;

namespace Qcow.Cli;

internal static class CompareCommand
{
    private const int Identical = 0;
    private const int Different = 1;
    private const int Error = 2;
    private const int ChunkBytes = 2 << 20;
    private const int Sector = 512;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fF", "spqU", [], ["force-share"]);
        if (opt.Positional.Count != 2)
        {
            throw new UsageException("Expecting two image file names");
        }

        TextWriter say = opt.Has("q") ? TextWriter.Null : stdout;
        var settings = VerbOptions.Reading(opt, VerbOptions.WalkingCache);
        try
        {
            using IBlockDevice a = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
            using IBlockDevice b = ImageOpener.Open(opt.Positional[1], opt.Value("F") ?? opt.Value("f"), settings);
            var progress = opt.Has("p") ? new ProgressBar(stderr) : null;
            (string verdict, bool identical) = Compare(a, b, opt.Has("s"), progress);
            progress?.Report(100);
            say.WriteLine(verdict);
            return identical ? Identical : Different;
        }
        catch (Exception e) when (e is QcowFormatException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"qcow: {e.Message}");
            return Error;
        }
    }

    /// <summary>qemu-img's verdict: the first difference, or that the images read the same.</summary>
    private static (string Verdict, bool Identical) Compare(IBlockDevice a, IBlockDevice b, bool strict, IProgress<double>? progress)
    {
        if (a.Length != b.Length && strict)
        {
            return ("Strict mode: Image size mismatch!", false);
        }

        string? warning = a.Length != b.Length ? "Warning: Image size mismatch!\n" : null;
        long common = Math.Min(a.Length, b.Length);
        byte[] bufferA = new byte[ChunkBytes];
        byte[] bufferB = new byte[ChunkBytes];
        for (long offset = 0; offset < common;)
        {
            BlockStatus sa = Run(a, offset, common);
            BlockStatus sb = Run(b, offset, common);
            long chunk = Math.Min(sa.Length, sb.Length);
            if (strict && (sa.Present, sa.Zero, sa.Data, sa.HasOffset) != (sb.Present, sb.Zero, sb.Data, sb.HasOffset))
            {
                return ($"Strict mode: Offset {offset} block status mismatch!", false);
            }

            if (!(sa.Zero && sb.Zero))
            {
                chunk = Math.Min(chunk, ChunkBytes);
                long? mismatch = sa.Present == sb.Present
                    ? (sa.Present ? FirstDifference(a, b, offset, (int)chunk, bufferA, bufferB) : null)
                    : FirstNonZero(sa.Present ? a : b, offset, (int)chunk, bufferA);
                if (mismatch is { } at)
                {
                    return ($"{warning}Content mismatch at offset {at}!", false);
                }
            }

            offset += chunk;
            progress?.Report(100.0 * offset / Math.Max(a.Length, b.Length));
        }

        IBlockDevice longer = a.Length > b.Length ? a : b;
        for (long offset = common; offset < longer.Length;)
        {
            BlockStatus s = Run(longer, offset, longer.Length);
            long chunk = Math.Min(s.Length, ChunkBytes);
            if (s.Present && !s.Zero && FirstNonZero(longer, offset, (int)chunk, bufferA) is { } at)
            {
                return ($"{warning}Content mismatch at offset {at}!", false);
            }

            offset += chunk;
        }

        return ($"{warning}Images are identical.", true);
    }

    /// <summary>Block status from offset on, merged across clusters while it stays the same.</summary>
    private static BlockStatus Run(IBlockDevice device, long offset, long end)
    {
        BlockStatus first = device.Status(offset, end - offset);
        long length = first.Length;
        while (offset + length < end && length < ChunkBytes)
        {
            BlockStatus next = device.Status(offset + length, end - offset - length);
            if ((next.Present, next.Zero, next.Data, next.HasOffset) != (first.Present, first.Zero, first.Data, first.HasOffset))
            {
                break;
            }

            length += next.Length;
        }

        return first with { Length = length };
    }

    /// <summary>The offset of the first 512-byte sector that differs, or null.</summary>
    private static long? FirstDifference(IBlockDevice a, IBlockDevice b, long offset, int length, byte[] bufferA, byte[] bufferB)
    {
        a.Read(offset, bufferA.AsSpan(0, length));
        b.Read(offset, bufferB.AsSpan(0, length));
        int at = bufferA.AsSpan(0, length).CommonPrefixLength(bufferB.AsSpan(0, length));
        return at == length ? null : offset + (at / Sector * Sector);
    }

    /// <summary>The offset of the first 512-byte sector that is not all zeros, or null.</summary>
    private static long? FirstNonZero(IBlockDevice device, long offset, int length, byte[] buffer)
    {
        device.Read(offset, buffer.AsSpan(0, length));
        int at = buffer.AsSpan(0, length).IndexOfAnyExcept((byte)0);
        return at < 0 ? null : offset + (at / Sector * Sector);
    }
}
