// One qemu-io session: the image open now (if any) and how it was opened, the open, close and
// reopen commands that change it, and the command line each command is split from.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal sealed class IoSession : IDisposable
{
    private string? _overlay;

    /// <param name="stdout">Where results go.</param>
    /// <param name="stderr">Where the messages qemu-io prints to standard error go.</param>
    /// <param name="image">An image already open (read-write, discards passed on), or null to open one later.</param>
    public IoSession(TextWriter stdout, TextWriter stderr, QcowImage? image = null)
    {
        Out = stdout;
        Error = stderr;
        Image = image;
        Path = image?.Path;
        Flags = image is null ? null : new IoOpenFlags(!image.CanWrite, false, false, null, false, false, true);
    }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>The image commands act on; null when none is open.</summary>
    public QcowImage? Image { get; private set; }

    /// <summary>The file the image was opened from (in snapshot mode, not the overlay written to).</summary>
    public string? Path { get; private set; }

    public IoOpenFlags? Flags { get; private set; }

    /// <summary>What the open image was opened as.</summary>
    public BlockTarget? Target { get; private set; }

    /// <summary>The options the open named (open -o, --image-opts), flat: reopen may not change some of them.</summary>
    public IReadOnlyDictionary<string, string> OpenedWith { get; private set; } = new Dictionary<string, string>();

    /// <summary>The image was opened under QEMU's compress filter: every write is a compressed one.</summary>
    public bool CompressWrites { get; private set; }

    /// <summary>A command failed (or an image failed to open): qemu-io then exits with status 1.</summary>
    public bool Failed { get; set; }

    /// <summary>The open image, or the refusal qemu-io prints when there is none.</summary>
    public QcowImage Current => Image ?? throw new IoCommandException("no file open, try 'help open'", toStderr: true);

    /// <summary>Runs one command line; false when it asks to quit.</summary>
    public bool Execute(string line)
    {
        string[] words = Split(line);
        if (words.Length == 0)
        {
            return true;
        }

        if (words[0] is "quit" or "q")
        {
            return false;
        }

        try
        {
            IoCommands.Run(this, words);
        }
        catch (IoCommandException e)
        {
            (e.ToStderr ? Error : Out).WriteLine(e.Message);
            Failed = true;
        }
        catch (Exception e) when (e is UsageException or QcowFormatException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            Error.WriteLine($"{Cli.ProgramName}: {Cli.Message(e)}");
            Failed = true;
        }

        return true;
    }

    /// <summary>Opens <paramref name="path"/> as qemu-io's open does; a failure is reported, leaves no image open, and returns false.</summary>
    public bool Open(string path, IoOpenFlags flags, IReadOnlyList<string> driverOptions)
    {
        if (Image != null)
        {
            throw new IoCommandException("file open already, try 'help close'", toStderr: true);
        }

        try
        {
            BlockTarget target = BlockOptions.Resolve(path, flags.Format, flags.ImageOpts, driverOptions);
            Image = flags.Snapshot ? OpenSnapshot(target.File, target.Format, flags) : target.Open((file, format) => OpenOptions(file, format, flags));
            Path = target.File;
            Flags = flags;
            Target = target;
            OpenedWith = BlockOptions.Parse(flags.ImageOpts ? [path, .. driverOptions] : driverOptions);
            CompressWrites = target.CompressWrites;
            if (target.Formats is [null] && Image.Info.Format == QcowImageFormat.Raw && !flags.ReadOnly)
            {
                // QEMU's raw driver warns when probing chose it for a writable open.
                Error.WriteLine($"WARNING: Image format was not specified for '{target.File}' and probing guessed raw.");
                Error.WriteLine("         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.");
                Error.WriteLine("         Specify the 'raw' format explicitly to remove the restrictions.");
            }
            return true;
        }
        catch (Exception e) when (e is QcowFormatException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // qemu-io names the device only when it was given a name.
            string device = path.Length > 0 && !flags.ImageOpts ? $" device {path}" : "";
            Error.WriteLine($"{Cli.ProgramName}: can't open{device}: {(e is QcowFormatException f ? f.Detail : Cli.Message(e))}");
            Failed = true;
            return false;
        }
    }

    public void Close()
    {
        Image?.Dispose();
        Image = null;
        if (_overlay != null)
        {
            File.Delete(_overlay);
            _overlay = null;
        }
    }

    /// <summary>
    /// Closes the image and opens the file it writes to again with <paramref name="flags"/>
    /// (reopen; truncate, which resizes the file while it is closed): in snapshot mode that is
    /// the overlay, which keeps what was written.
    /// </summary>
    public void Reopen(IoOpenFlags flags, Action<string>? whileClosed = null)
    {
        QcowImage current = Current;
        string file = WrittenFile;
        current.Dispose();
        Image = null;
        try
        {
            whileClosed?.Invoke(file);
        }
        finally
        {
            Image = _overlay != null || Target is null
                ? QcowImage.Open(file, OpenOptions(file, _overlay != null ? null : Flags!.Format, flags))
                : Target.Open((f, format) => OpenOptions(f, format, flags));
            Flags = flags with { Snapshot = _overlay != null };
        }
    }

    /// <summary>The file the open image writes to: the image, or in snapshot mode its temporary overlay.</summary>
    public string WrittenFile => _overlay ?? Path ?? throw new IoCommandException("no file open, try 'help open'", toStderr: true);

    public void Dispose() => Close();

    private static QcowOpenOptions OpenOptions(string file, string? format, IoOpenFlags flags) => new()
    {
        ReadOnly = flags.ReadOnly,
        Format = VerbOptions.Format(file, format),
        ForceShare = flags.ForceShare,
        IgnoreFlushes = flags.IgnoreFlushes,
        WriteThrough = flags.WriteThrough,
        PassDiscards = flags.Unmap,
    };

    /// <summary>
    /// Snapshot mode, as qemu-io -s: writes go to a temporary qcow2 overlay whose backing file is
    /// the image, deleted when the image closes; the image itself is only read.
    /// </summary>
    private QcowImage OpenSnapshot(string file, string? format, IoOpenFlags flags)
    {
        QcowImageFormat backingFormat = VerbOptions.Format(file, format);
        long size;
        using (QcowImage image = QcowImage.Open(file, OpenOptions(file, format, flags with { ReadOnly = true })))
        {
            size = image.Length;
        }

        string overlay = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"vl.{Guid.NewGuid():N}");
        QcowImage.Create(overlay, new QcowCreateOptions { Size = size, BackingFile = System.IO.Path.GetFullPath(file), BackingFormat = backingFormat }).Dispose();
        _overlay = overlay;
        return QcowImage.Open(overlay, OpenOptions(overlay, null, flags with { ReadOnly = false }));
    }

    /// <summary>A command line split into words as qemu-io splits it: at each space, and nowhere else (quotes are kept as they are).</summary>
    private static string[] Split(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>A qemu-io command failed: its message is printed (to standard output unless qemu-io prints it to standard error) and the exit status becomes 1.</summary>
internal sealed class IoCommandException : Exception
{
    public IoCommandException(string message, bool toStderr = false)
        : base(message)
    {
        ToStderr = toStderr;
    }

    public bool ToStderr { get; }
}
