// qcow io: qemu-io's command syntax (read, write, discard, flush, length) over one image.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using Qcow.IO;

namespace Qcow.Cli;

internal static class IoCommand
{
    /// <summary>qemu-io writes 0xcd when no pattern is given.</summary>
    private const byte DefaultPattern = 0xcd;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fc", "rU");
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        if (opt.Has("U") && !opt.Has("r"))
        {
            throw new UsageException("force-share=on can only be used with read-only images");
        }

        var settings = VerbOptions.Reading(opt, VerbOptions.WalkingCache) with { Writable = !opt.Has("r") };
        using IBlockDevice device = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
        int status = 0;
        foreach (string command in opt.Values("c"))
        {
            try
            {
                Execute(device, command, stdout);
            }
            catch (Exception e) when (e is CommandException or UsageException or ArgumentException or InvalidOperationException)
            {
                stdout.WriteLine(e.Message);
                status = 1;
            }
        }

        return status;
    }

    public static void Execute(IBlockDevice device, string command, TextWriter stdout)
    {
        string[] words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            return;
        }

        try
        {
            Dispatch(device, words, stdout);
        }
        catch (IOException e)
        {
            // qemu-io names the request and the system's error, and goes on with the next command.
            throw new CommandException($"{RequestName(words[0])} failed: {SystemErrors.Text(e)}");
        }
    }

    private static string RequestName(string command) => command switch
    {
        "r" => "read",
        "w" => "write",
        "d" => "discard",
        "f" => "flush",
        _ => command,
    };

    private static void Dispatch(IBlockDevice device, string[] words, TextWriter stdout)
    {
        var rest = new ArraySegment<string>(words, 1, words.Length - 1);
        switch (words[0])
        {
            case "read" or "r":
                Read(device, GetOpt.Parse(rest, "P", "vq"), stdout);
                break;
            case "write" or "w":
                Write(device, GetOpt.Parse(rest, "P", "zcqu"), stdout);
                break;
            case "discard" or "d":
                Discard(device, GetOpt.Parse(rest, "", "q"), stdout);
                break;
            case "flush" or "f":
                device.Flush();
                break;
            case "length" or "len":
                stdout.WriteLine(Sizes.Human(device.Length));
                break;
            case "map":
                Map(device, stdout);
                break;
            case "alloc":
                Alloc(device, GetOpt.Parse(rest, "", ""), stdout);
                break;
            case "info":
                Info(device, stdout);
                break;
            default:
                throw new CommandException($"command \"{words[0]}\" not found");
        }
    }

    private static (long Offset, long Length) Range(GetOpt opt, IBlockDevice device)
    {
        if (opt.Positional.Count != 2)
        {
            throw new CommandException("expected an offset and a length");
        }

        long offset = Sizes.Parse(opt.Positional[0]);
        long length = Sizes.Parse(opt.Positional[1]);
        if (offset + length > device.Length)
        {
            throw new CommandException($"offset {offset} and length {length} go past the end of the image ({device.Length})");
        }

        return (offset, length);
    }

    private static void Read(IBlockDevice device, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, device);
        var watch = Stopwatch.StartNew();
        byte[] buffer = new byte[length];
        device.Read(offset, buffer);
        if (opt.Value("P") is string p)
        {
            byte pattern = Pattern(p);
            int bad = buffer.AsSpan().IndexOfAnyExcept(pattern);
            if (bad >= 0)
            {
                throw new CommandException($"Pattern verification failed at offset {offset + bad}, {length} bytes");
            }
        }

        if (opt.Has("v"))
        {
            Dump(stdout, offset, buffer);
        }

        Report(stdout, "read", offset, length, watch, opt.Has("q"));
    }

    private static void Write(IBlockDevice device, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, device);
        var watch = Stopwatch.StartNew();
        if (opt.Has("c"))
        {
            WriteCompressed(device, offset, length, opt.Value("P") is string cp ? Pattern(cp) : DefaultPattern);
        }
        else if (opt.Has("z"))
        {
            device.WriteZeroes(offset, length, mayUnmap: opt.Has("u"));
        }
        else
        {
            byte[] buffer = new byte[length];
            buffer.AsSpan().Fill(opt.Value("P") is string p ? Pattern(p) : DefaultPattern);
            device.Write(offset, buffer);
        }

        Report(stdout, "wrote", offset, length, watch, opt.Has("q"));
    }

    /// <summary>qemu-io's write -c: whole clusters (the last may end with the image), each compressed.</summary>
    private static void WriteCompressed(IBlockDevice device, long offset, long length, byte pattern)
    {
        if (device is not QcowDevice q)
        {
            throw new CommandException("write failed: Operation not supported");
        }

        int cs = q.Layout.ClusterSize;
        if (offset % cs != 0 || (length % cs != 0 && offset + length != q.Length))
        {
            throw new CommandException("write failed: Invalid argument");
        }

        byte[] cluster = new byte[cs];
        cluster.AsSpan().Fill(pattern);
        for (long at = offset; at < offset + length; at += cs)
        {
            q.WriteCompressed(at, cluster.AsSpan(0, (int)Math.Min(cs, offset + length - at)));
        }
    }

    private static void Discard(IBlockDevice device, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, device);
        var watch = Stopwatch.StartNew();
        device.Discard(offset, length);
        Report(stdout, "discard", offset, length, watch, opt.Has("q"));
    }

    /// <summary>qemu-io's map: runs the image itself allocates (its backing file aside), and runs it does not.</summary>
    private static void Map(IBlockDevice device, TextWriter stdout)
    {
        for (long offset = 0; offset < device.Length;)
        {
            bool allocated = AllocatedHere(device, offset, device.Length, out long length);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Sizes.Io(length)} (0x{length:x}) bytes {(allocated ? "   " : "not")} allocated at offset {Sizes.Io(offset)} (0x{offset:x})"));
            offset += length;
        }
    }

    /// <summary>qemu-io's alloc OFFSET [LENGTH]: how many of the bytes the image itself allocates.</summary>
    private static void Alloc(IBlockDevice device, GetOpt opt, TextWriter stdout)
    {
        if (opt.Positional.Count is < 1 or > 2)
        {
            throw new CommandException("alloc: expected an offset and an optional length");
        }

        long offset = Sizes.Parse(opt.Positional[0]);
        long count = Math.Min(opt.Positional.Count == 2 ? Sizes.Parse(opt.Positional[1]) : 512, device.Length - offset);
        long end = offset + count;
        long allocated = 0;
        for (long at = offset; at < end;)
        {
            allocated += AllocatedHere(device, at, end, out long length) ? length : 0;
            at += length;
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{allocated}/{count} bytes allocated at offset {Sizes.Io(offset)}"));
    }

    /// <summary>Whether the image itself (not its backing file) allocates the bytes at offset, and for how long that holds (up to end).</summary>
    private static bool AllocatedHere(IBlockDevice device, long offset, long end, out long length)
    {
        BlockStatus first = device.Status(offset, end - offset);
        bool allocated = first.Depth == 0 && first.Present;
        length = first.Length;
        while (offset + length < end)
        {
            BlockStatus next = device.Status(offset + length, end - offset - length);
            if ((next.Depth == 0 && next.Present) != allocated)
            {
                break;
            }

            length += next.Length;
        }

        return allocated;
    }

    /// <summary>qemu-io's info: format, cluster size, where VM state would go, and the format's own facts.</summary>
    private static void Info(IBlockDevice device, TextWriter stdout)
    {
        int clusterSize = device is QcowDevice q ? q.Layout.ClusterSize : 0;
        long vmState = device is QcowDevice { Layout.Version: >= 2 } v
            ? (long)Qcow.Format.GeometryModule.l1EntriesFor(v.Layout.Geometry, v.Layout.VirtualSize) << v.Layout.L1Shift
            : 0;
        stdout.WriteLine($"format name: {device.FormatName}");
        stdout.WriteLine($"cluster size: {Sizes.Io(clusterSize)}");
        stdout.WriteLine($"vm state offset: {Sizes.Io(vmState)}");
        if (device is QcowDevice { Header: { } header } q2)
        {
            stdout.Write(InfoCommand.FormatSpecific(header, q2.ReadBitmaps().Bitmaps, q2.ReadLuksHeader()));
        }
    }

    private static byte Pattern(string text)
    {
        long value = Sizes.Parse(text);
        return (byte)value;
    }

    private static void Report(TextWriter stdout, string verb, long offset, long length, Stopwatch watch, bool quiet)
    {
        if (quiet)
        {
            return;
        }

        double seconds = Math.Max(watch.Elapsed.TotalSeconds, 1e-6);
        stdout.WriteLine($"{verb} {length}/{length} bytes at offset {offset}");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Sizes.Human(length)}, 1 ops; {watch.Elapsed:mm\\:ss\\.ff} sec ({Sizes.Human((long)(length / seconds))}/sec and {1 / seconds:0.0000} ops/sec)"));
    }

    /// <summary>qemu-io's -v dump: offset, 16 hex bytes, their printable characters.</summary>
    private static void Dump(TextWriter stdout, long offset, byte[] bytes)
    {
        for (int at = 0; at < bytes.Length; at += 16)
        {
            var line = new StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"{offset + at:x8}:  ");
            int n = Math.Min(16, bytes.Length - at);
            for (int i = 0; i < n; i++)
            {
                line.Append(CultureInfo.InvariantCulture, $"{bytes[at + i]:x2} ");
            }

            line.Append(' ');
            for (int i = 0; i < n; i++)
            {
                char c = (char)bytes[at + i];
                line.Append(c is >= ' ' and <= '~' ? c : '.');
            }

            stdout.WriteLine(line.ToString());
        }
    }
}

/// <summary>A qemu-io command failed: its message is printed and qcow io exits with status 1.</summary>
internal sealed class CommandException : Exception
{
    public CommandException(string message)
        : base(message)
    {
    }
}
