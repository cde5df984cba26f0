// Names stored in an image are read as QEMU reads them, and troubles with them are told in
// QEMU's words, never .NET's: a backing name of length 0 is no backing file, a name ends at its
// first NUL byte, and a file that is not there is "No such file or directory".
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class StoredNameTests
{
    /// <summary>qcow2's backing_file_offset (8 bytes) and backing_file_size (4 bytes) fields.</summary>
    private const int BackingOffsetField = 8;
    private const int BackingSizeField = 16;

    [OracleFact]
    public void BackingNameOfLengthZero_IsNoBackingFile()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 7 0 64k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Patch(dir.File("top.qcow2"), bytes => BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(BackingSizeField), 0));

        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, "info", "top.qcow2"), QcowTool.Run("info", dir.File("top.qcow2")).Stdout.Replace(dir.File("top.qcow2"), "top.qcow2"));
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "raw", "top.qcow2", "theirs.raw");
        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("top.qcow2"), dir.File("mine.raw"));
        Assert.True(mine.Code == 0, mine.Stderr);
        Assert.Equal(File.ReadAllBytes(dir.File("theirs.raw")), File.ReadAllBytes(dir.File("mine.raw")));
    }

    [OracleFact]
    public void BackingName_EndsAtItsFirstNul()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Patch(dir.File("top.qcow2"), bytes => bytes[(int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(BackingOffsetField)) + 4] = 0);

        Assert.Contains("backing file: base\n", Qemu.Ok("qemu-img", dir.Path, "info", "top.qcow2"));
        Assert.Matches(@"backing file: base \(actual path: [^\n\0]*/base\)\n", QcowTool.Run("info", dir.File("top.qcow2")).Stdout);
        var (code, _, stderr) = Qemu.Run("qemu-img", dir.Path, "convert", "-O", "raw", "top.qcow2", "theirs.raw");
        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("top.qcow2"), dir.File("mine.raw"));
        Assert.Equal(code, mine.Code);
        Assert.Contains("Could not open 'top.qcow2': Could not open backing file: Could not open 'base': No such file or directory", stderr);
        Assert.Equal($"qcow: Could not open '{dir.File("top.qcow2")}': Could not open backing file: Could not open '{dir.File("base")}': No such file or directory\n", mine.Stderr);
    }

    [OracleFact]
    public void ASecondBackingFormatExtension_OverridesTheFirst()
    {
        // iotest 114: qcow2.py add-header-ext appends a second backing format; QEMU's last wins.
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Patch(dir.File("top.qcow2"), bytes =>
        {
            int at = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(100));
            while (BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(at)) != 0)
            {
                at += 8 + (((int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(at + 4)) + 7) & ~7);
            }

            // Where the end marker was: magic, length 3, "foo" padded to 8; then a new end marker,
            // and the backing name moved after it, as qcow2.py rewrites the header.
            byte[] name = bytes.AsSpan((int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(BackingOffsetField)), (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(BackingSizeField))).ToArray();
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at), 0xE2792ACA);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at + 4), 3);
            "foo\0\0\0\0\0"u8.CopyTo(bytes.AsSpan(at + 8));
            bytes.AsSpan(at + 16, 8).Clear();
            name.CopyTo(bytes.AsSpan(at + 24));
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(BackingOffsetField), (ulong)(at + 24));
        });

        foreach ((string output, string line) in new[] { ("human", "backing file format: foo\n"), ("json", "\"backing-filename-format\": \"foo\",\n") })
        {
            Assert.Contains(line, Qemu.Ok("qemu-img", dir.Path, "info", $"--output={output}", "top.qcow2"));
            Assert.Contains(line, QcowTool.Run("info", $"--output={output}", dir.File("top.qcow2")).Stdout);
        }

        var (code, _, stderr) = Qemu.Run("qemu-img", dir.Path, "convert", "-O", "raw", "top.qcow2", "theirs.raw");
        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("top.qcow2"), dir.File("mine.raw"));
        Assert.Equal(code, mine.Code);
        Assert.Contains("Could not open backing file: Unknown driver 'foo'", stderr);
        Assert.Contains("Could not open backing file: Unknown driver 'foo'", mine.Stderr);
    }

    private static void Patch(string path, Action<byte[]> change)
    {
        byte[] bytes = File.ReadAllBytes(path);
        change(bytes);
        File.WriteAllBytes(path, bytes);
    }
}
