// Creating image files: qcow2 from the core's layout, qcow v1 as qemu-img writes it, raw.
using System;
using System.IO;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.FSharp.Core;
using Qcow.Format;

namespace Qcow.IO;

internal static class ImageCreator
{
    /// <summary>
    /// Opens the backing file a new image names, as qemu-img create does before it writes
    /// anything: for its size, and to refuse one that cannot be opened.
    /// </summary>
    /// <exception cref="IOException">The backing file cannot be opened ("Could not open backing image").</exception>
    public static long BackingLength(string path, string backing, string? format)
    {
        // Shared with any writer, its own backing files left closed: only its length is wanted.
        var settings = new OpenSettings(false, false, 1 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: true, OpenBackingFiles: false);
        try
        {
            using IBlockDevice device = ImageOpener.Open(ImageOpener.ResolveBacking(path, backing), format, settings);
            return device.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or QcowFormatException)
        {
            throw new IOException($"{path}: {e.Message}\nCould not open backing image.", e);
        }
    }

    /// <summary>
    /// Runs <paramref name="create"/>, which makes the file at <paramref name="path"/>; when it
    /// fails, a file that did not exist before is removed, so that a failed create leaves nothing.
    /// </summary>
    public static T Creating<T>(string path, Func<T> create)
    {
        bool existed = File.Exists(path);
        try
        {
            return create();
        }
        catch when (!existed)
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Writes a new qcow2 image; the options have been validated by the core.</summary>
    /// <param name="path">The file to create.</param>
    /// <param name="options">The image's options.</param>
    /// <param name="preallocation">qemu-img's preallocation mode: off, metadata, falloc or full.</param>
    public static void CreateQcow2(string path, Create.Qcow2Options options, string preallocation = "off")
    {
        FSharpResult<Create.NewImage, string> layout = Create.qcow2(options);
        if (layout.IsError)
        {
            throw new ArgumentException($"{path}: {layout.ErrorValue}");
        }

        if (OptionModule.ToObj(options.DataFile) is { } dataFile)
        {
            // As qemu-img: the data file is a raw file of the virtual size, made first.
            CreateRaw(ImageOpener.ResolveBacking(path, dataFile), (long)options.Size);
        }

        using (FileStorage storage = FileStorage.Create(path))
        {
            foreach (Tuple<ulong, byte[]> write in layout.ResultValue.Writes)
            {
                storage.Write((long)write.Item1, write.Item2);
            }

            storage.SetLength((long)layout.ResultValue.FileLength);
            storage.Flush();
        }

        if (preallocation != "off")
        {
            var settings = new OpenSettings(true, false, 32 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, OpenBackingFiles: false);
            using QcowDevice device = ImageOpener.OpenQcow(path, settings);
            // falloc allocates the space as full does; both read as zeros.
            device.Preallocate(0, writeZeros: preallocation is "full" or "falloc");
        }
    }

    /// <summary>Writes a new qcow v1 image with qemu-img's geometry.</summary>
    public static void CreateQcowV1(string path, ulong size, string? backingFile)
    {
        var (header, name, fileLength) = QcowV1HeaderModule.forCreate(size, OptionModule.OfObj(backingFile));
        using FileStorage storage = FileStorage.Create(path);
        storage.Write(0, QcowV1HeaderModule.encode(header));
        if (name != null)
        {
            storage.Write(Limits.HeaderV1Length, name.Value);
        }

        // The L1 table is written with zeros, as qemu-img writes it, so that its space is taken now.
        storage.Write((long)header.L1TableOffset, new byte[fileLength - header.L1TableOffset]);
        storage.Flush();
    }

    /// <summary>
    /// A raw file of the size, sparse but for its first block, which is written (with zeros) as
    /// QEMU writes it, so that the file's first block is allocated as in files qemu-img creates.
    /// </summary>
    public static void CreateRaw(string path, long size)
    {
        using FileStorage storage = FileStorage.Create(path);
        storage.SetLength(size);
        storage.Write(0, new byte[Math.Min(size, 4096)]);
        storage.Flush();
    }
}
