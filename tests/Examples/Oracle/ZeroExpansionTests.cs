// A downgrade to compat 0.10 expands zero clusters, as qemu-img amend does, in the active state
// and in every snapshot: twins set up by QEMU's tools are amended, one by qemu-img, the other by
// Qcow; the active states must read the same, each snapshot must read as it did before the
// amend, and Qcow's image must pass qemu-img check without leaks. The scenarios are iotest
// 061's, and one more: an allocated zero cluster that still names a cluster a snapshot holds
// data in. QEMU 7.2 zeroes that cluster in place, so the snapshot loses its data and qemu-img
// check finds an OFLAG_COPIED error; Qcow gives the zero cluster a new cluster instead.
using System.IO;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class ZeroExpansionTests
{
    public static readonly TheoryData<string, string[], string[]> Scenarios = new()
    {
        { "active zeros", [], ["write -z 0 128k", "write -P 3 1M 64k"] },
        { "zeros under a snapshot, overwritten since", ["snapshot:foo"], ["write -z 0 128k", "snapshot:foo", "write -P 0x2a 0 128k"] },
        { "a zeroed L2 table shared with a snapshot", [], ["write -z 0 128k", "snapshot:foo"] },
        { "zeros over a backing file", ["backing"], ["write -z 0 64k"] },
        { "zeros over a backing file, under a snapshot", ["backing"], ["write -z 0 64k", "snapshot:foo", "write -P 0x42 0 128k"] },
        { "an allocated zero cluster whose data a snapshot keeps", [], ["write -P 1 0 128k", "snapshot:foo", "write -z 0 64k", "write -z -u 64k 64k"] },
        { "allocated zero clusters, unshared", [], ["write -P 1 0 256k", "write -z 0 128k", "write -z 192k 4k"] },
    };

    [OracleTheory]
    [MemberData(nameof(Scenarios))]
    public void DowngradeExpandsZeroClusters_AsQemuDoes(string scenario, string[] setup, string[] steps)
    {
        using var dir = new TempDir();
        string[] backing = [];
        if (System.Array.IndexOf(setup, "backing") >= 0)
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
            Qemu.Io(dir.Path, "base.qcow2", "write -P 0x2a 0 128k");
            backing = ["-b", "base.qcow2", "-F", "qcow2"];
        }

        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", "-o", "compat=1.1", .. backing, "theirs.qcow2", "4M"]);
        foreach (string step in steps)
        {
            if (step.StartsWith("snapshot:", System.StringComparison.Ordinal))
            {
                Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", step["snapshot:".Length..], "theirs.qcow2");
            }
            else
            {
                Qemu.Io(dir.Path, "theirs.qcow2", step);
            }
        }

        File.Copy(dir.File("theirs.qcow2"), dir.File("ours.qcow2"));
        bool snapshots = System.Array.Exists(steps, s => s.StartsWith("snapshot:", System.StringComparison.Ordinal));
        byte[]? snapshotBefore = snapshots ? Qemu.RawBytes(dir.Path, "ours.qcow2", "-l", "foo") : null;
        Qemu.Ok("qemu-img", dir.Path, "amend", "-o", "compat=0.10", "theirs.qcow2");
        var (code, _, stderr) = CliTests.QcowTool.Run("amend", "-o", "compat=0.10", dir.File("ours.qcow2"));
        Assert.True(code == 0, $"{scenario}: {stderr}");

        Qemu.AssertClean(dir.Path, "ours.qcow2");
        Assert.Contains("compat: 0.10", Qemu.Ok("qemu-img", dir.Path, "info", "ours.qcow2"));
        Assert.Equal(Qemu.RawBytes(dir.Path, "theirs.qcow2"), Qemu.RawBytes(dir.Path, "ours.qcow2"));
        if (snapshotBefore is not null)
        {
            Assert.Equal(snapshotBefore, Qemu.RawBytes(dir.Path, "ours.qcow2", "-l", "foo"));
            Qemu.Ok("qemu-img", dir.Path, "snapshot", "-a", "foo", "ours.qcow2");
            Qemu.AssertClean(dir.Path, "ours.qcow2");
        }
    }
}
