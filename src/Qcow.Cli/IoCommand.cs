// qcow io: qemu-io's command syntax (read, write, discard, flush, length) over one image.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;

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

        string path = opt.Positional[0];
        using QcowImage image = QcowImage.Open(path, VerbOptions.Reading(opt, path, opt.Value("f"), VerbOptions.WalkingCache) with { ReadOnly = opt.Has("r") });
        int status = 0;
        foreach (string command in opt.Values("c"))
        {
            try
            {
                Execute(image, command, stdout);
            }
            catch (Exception e) when (e is CommandException or UsageException or ArgumentException or InvalidOperationException)
            {
                stdout.WriteLine(e.Message);
                status = 1;
            }
        }

        return status;
    }

    public static void Execute(QcowImage image, string command, TextWriter stdout)
    {
        string[] words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            return;
        }

        try
        {
            Dispatch(image, words, stdout);
        }
        catch (IOException e)
        {
            // qemu-io names the request and the system's error, and goes on with the next command.
            throw new CommandException($"{RequestName(words[0])} failed: {SystemErrors.Text(e.Message)}");
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

    private static void Dispatch(QcowImage image, string[] words, TextWriter stdout)
    {
        var rest = new ArraySegment<string>(words, 1, words.Length - 1);
        switch (words[0])
        {
            case "read" or "r":
                Read(image, GetOpt.Parse(rest, "P", "vq"), stdout);
                break;
            case "write" or "w":
                Write(image, GetOpt.Parse(rest, "P", "zcqu"), stdout);
                break;
            case "discard" or "d":
                Discard(image, GetOpt.Parse(rest, "", "q"), stdout);
                break;
            case "flush" or "f":
                image.Flush();
                break;
            case "length" or "len":
                stdout.WriteLine(Sizes.Human(image.Length));
                break;
            case "map":
                Map(image, stdout);
                break;
            case "alloc":
                Alloc(image, GetOpt.Parse(rest, "", ""), stdout);
                break;
            case "info":
                Info(image, stdout);
                break;
            default:
                throw new CommandException($"command \"{words[0]}\" not found");
        }
    }

    private static (long Offset, long Length) Range(GetOpt opt, QcowImage image)
    {
        if (opt.Positional.Count != 2)
        {
            throw new CommandException("expected an offset and a length");
        }

        long offset = Sizes.Parse(opt.Positional[0]);
        long length = Sizes.Parse(opt.Positional[1]);
        if (offset + length > image.Length)
        {
            throw new CommandException($"offset {offset} and length {length} go past the end of the image ({image.Length})");
        }

        return (offset, length);
    }

    private static void Read(QcowImage image, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, image);
        var watch = Stopwatch.StartNew();
        byte[] buffer = new byte[length];
        image.Read(offset, buffer);
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

    private static void Write(QcowImage image, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, image);
        var watch = Stopwatch.StartNew();
        if (opt.Has("c"))
        {
            WriteCompressed(image, offset, length, opt.Value("P") is string cp ? Pattern(cp) : DefaultPattern);
        }
        else if (opt.Has("z"))
        {
            image.WriteZeroes(offset, length, mayUnmap: opt.Has("u"));
        }
        else
        {
            byte[] buffer = new byte[length];
            buffer.AsSpan().Fill(opt.Value("P") is string p ? Pattern(p) : DefaultPattern);
            image.Write(offset, buffer);
        }

        Report(stdout, "wrote", offset, length, watch, opt.Has("q"));
    }

    /// <summary>qemu-io's write -c: whole clusters (the last may end with the image), each compressed.</summary>
    private static void WriteCompressed(QcowImage image, long offset, long length, byte pattern)
    {
        byte[] buffer = new byte[length];
        buffer.AsSpan().Fill(pattern);
        try
        {
            image.WriteCompressed(offset, buffer);
        }
        catch (NotSupportedException)
        {
            throw new CommandException("write failed: Operation not supported");
        }
        catch (ArgumentException)
        {
            throw new CommandException("write failed: Invalid argument");
        }
    }

    private static void Discard(QcowImage image, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, image);
        var watch = Stopwatch.StartNew();
        image.Discard(offset, length);
        Report(stdout, "discard", offset, length, watch, opt.Has("q"));
    }

    /// <summary>qemu-io's map: runs the image itself allocates (its backing file aside), and runs it does not.</summary>
    private static void Map(QcowImage image, TextWriter stdout)
    {
        for (long offset = 0; offset < image.Length;)
        {
            bool allocated = AllocatedHere(image, offset, image.Length, out long length);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Sizes.Io(length)} (0x{length:x}) bytes {(allocated ? "   " : "not")} allocated at offset {Sizes.Io(offset)} (0x{offset:x})"));
            offset += length;
        }
    }

    /// <summary>qemu-io's alloc OFFSET [LENGTH]: how many of the bytes the image itself allocates.</summary>
    private static void Alloc(QcowImage image, GetOpt opt, TextWriter stdout)
    {
        if (opt.Positional.Count is < 1 or > 2)
        {
            throw new CommandException("alloc: expected an offset and an optional length");
        }

        long offset = Sizes.Parse(opt.Positional[0]);
        long count = Math.Min(opt.Positional.Count == 2 ? Sizes.Parse(opt.Positional[1]) : 512, image.Length - offset);
        long end = offset + count;
        long allocated = 0;
        for (long at = offset; at < end;)
        {
            allocated += AllocatedHere(image, at, end, out long length) ? length : 0;
            at += length;
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{allocated}/{count} bytes allocated at offset {Sizes.Io(offset)}"));
    }

    /// <summary>Whether the image itself (not its backing file) allocates the bytes at offset, and for how long that holds (up to end).</summary>
    private static bool AllocatedHere(QcowImage image, long offset, long end, out long length)
    {
        QcowExtent first = image.GetBlockStatus(offset, end - offset);
        bool allocated = first.Depth == 0 && first.Present;
        length = first.Length;
        while (offset + length < end)
        {
            QcowExtent next = image.GetBlockStatus(offset + length, end - offset - length);
            if ((next.Depth == 0 && next.Present) != allocated)
            {
                break;
            }

            length += next.Length;
        }

        return allocated;
    }

    /// <summary>qemu-io's info: format, cluster size, where VM state would go, and the format's own facts.</summary>
    private static void Info(QcowImage image, TextWriter stdout)
    {
        QcowInfo info = image.Info;
        stdout.WriteLine($"format name: {VerbOptions.Name(info.Format)}");
        stdout.WriteLine($"cluster size: {Sizes.Io(info.ClusterSize)}");
        stdout.WriteLine($"vm state offset: {Sizes.Io(info.VmStateOffset)}");
        if (info.Format == QcowImageFormat.Qcow2)
        {
            stdout.Write(InfoCommand.FormatSpecific(info));
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
