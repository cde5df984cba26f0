// qcow io: qemu-io's command syntax (read, write, discard, flush, length) over one image.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
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

        var settings = new OpenSettings(!opt.Has("r"), false, 32 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: opt.Has("U"));
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
        if (opt.Has("c"))
        {
            throw new CommandException("compressed writes are not supported by qcow yet");
        }

        var watch = Stopwatch.StartNew();
        if (opt.Has("z"))
        {
            device.WriteZeroes(offset, length);
        }
        else
        {
            byte[] buffer = new byte[length];
            buffer.AsSpan().Fill(opt.Value("P") is string p ? Pattern(p) : DefaultPattern);
            device.Write(offset, buffer);
        }

        Report(stdout, "wrote", offset, length, watch, opt.Has("q"));
    }

    private static void Discard(IBlockDevice device, GetOpt opt, TextWriter stdout)
    {
        (long offset, long length) = Range(opt, device);
        var watch = Stopwatch.StartNew();
        device.Discard(offset, length);
        Report(stdout, "discard", offset, length, watch, opt.Has("q"));
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
