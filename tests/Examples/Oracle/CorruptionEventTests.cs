// QEMU's fatal corruption events, against qemu-io: a refcount block offset found misaligned on
// the way to an allocation fails the write with EIO, announces the marking, sets the corrupt bit,
// and the image answers no further requests; both tools leave the same image behind.
using System;
using System.Buffers.Binary;
using System.IO;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class CorruptionEventTests
{
    [OracleFact]
    public void AMisalignedRefcountBlock_MarksTheImageCorrupt_AsQemuDoes()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "refcount_bits=64,cluster_size=1k", "a.qcow2", "1M");
        Qemu.Io(dir.Path, "a.qcow2", "write 0 124k");
        Qemu.Io(dir.Path, "a.qcow2", "discard 121k 1k");
        Qemu.Io(dir.Path, "a.qcow2", "discard 123k 1k");
        byte[] file = File.ReadAllBytes(dir.File("a.qcow2"));
        long table = (long)BinaryPrimitives.ReadUInt64BigEndian(file.AsSpan(48));
        file[table + 14] = 0x06;
        File.WriteAllBytes(dir.File("a.qcow2"), file);
        File.WriteAllBytes(dir.File("b.qcow2"), file);

        var theirs = Qemu.Run("qemu-io", dir.Path, "-c", "write -q 121k 3k", "-c", "write -q 0 512", "a.qcow2");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["io", "-c", "write -q 121k 3k", "-c", "write -q 0 512", dir.File("b.qcow2")], stdout, stderr);

        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout.ToString());
        Assert.Equal(theirs.Stderr, stderr.ToString());
        Assert.Equal(File.ReadAllBytes(dir.File("a.qcow2")), File.ReadAllBytes(dir.File("b.qcow2")));
    }
}
