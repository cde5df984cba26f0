// Metadata preallocation against qemu-img's (iotest 115): every cluster size and refcount width,
// with one refcount block, with several, and with a refcount table that grows, from create and
// from resize. qemu-img check finds
// the image clean and qemu-img compare finds it identical to qemu-img's own image, except where
// qemu-img's own image exposes stale bytes (it maps data clusters onto the refcount table it
// freed when the table grew, without zeroing them); there Qcow's must read as zeros.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class PreallocationTests
{
    /// <summary>qemu-img compare reads every preallocated cluster: sizes stay below this.</summary>
    private const long MaxSize = 2L << 30;

    public static IEnumerable<object[]> CreateCases()
    {
        foreach (int clusterBits in new[] { 9, 12, 16, 21 })
        {
            for (int order = 0; order <= 6; order++)
            {
                long covered = RefcountBlockCovers(clusterBits, order);
                yield return [clusterBits, order, Math.Min(covered / 4, 64L << 20)];
                if (3 * covered <= MaxSize)
                {
                    yield return [clusterBits, order, 3 * covered];
                }

                // Past what the first refcount table cluster covers, the table grows as well.
                // (It covers 2^(3 * clusterBits - order) bytes, which can overflow a long.)
                int tableCoversBits = 3 * clusterBits - order;
                if (tableCoversBits < 62 && (2L << tableCoversBits) <= MaxSize)
                {
                    yield return [clusterBits, order, 2L << tableCoversBits];
                }
            }
        }
    }

    [OracleTheory]
    [MemberData(nameof(CreateCases))]
    public void CreateWithMetadataPreallocation_IsCleanAndReadsAsQemuImgsImage(int clusterBits, int refcountOrder, long size)
    {
        using var dir = new TempDir();
        string options = $"cluster_size={1 << clusterBits},refcount_bits={1 << refcountOrder},preallocation=metadata";
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", options, "theirs.qcow2", size.ToString());
        var mine = QcowTool.Run("create", "-q", "-f", "qcow2", "-o", options, dir.File("mine.qcow2"), size.ToString());
        Assert.True(mine.Code == 0, mine.Stderr);

        AssertCleanAndAsTheirs(dir, size);
    }

    [OracleTheory]
    [InlineData(9, 0, 8L << 20)]
    [InlineData(9, 4, 24L << 20)]
    [InlineData(9, 6, 8L << 20)]
    [InlineData(12, 0, 400L << 20)]
    [InlineData(16, 6, 1L << 30)]
    public void ResizeWithMetadataPreallocation_IsCleanAndReadsAsQemuImgsImage(int clusterBits, int refcountOrder, long size)
    {
        using var dir = new TempDir();
        string options = $"cluster_size={1 << clusterBits},refcount_bits={1 << refcountOrder}";
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", options, image, "1M");
            Qemu.Io(dir.Path, image, "write -P 7 0 300k");
        }

        Qemu.Ok("qemu-img", dir.Path, "resize", "-q", "--preallocation=metadata", "theirs.qcow2", size.ToString());
        var mine = QcowTool.Run("resize", "-q", "--preallocation=metadata", dir.File("mine.qcow2"), size.ToString());
        Assert.True(mine.Code == 0, mine.Stderr);

        AssertCleanAndAsTheirs(dir, size);
    }

    [OracleTheory]
    [InlineData("off", "falloc", "", "1984k", "+48k")]
    [InlineData("off", "metadata", "raw", "31k", "96k")]
    [InlineData("off", "full", "raw", "31k", "128k")]
    public void ResizeWithPreallocation_AllocatesTheNewAreaAsQemuImgDoes(string created, string grown, string backing, string size, string newSize)
    {
        using var dir = new TempDir();
        if (backing != "")
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "base.raw", "128k");
            Qemu.Ok("qemu-io", dir.Path, "-f", "raw", "-c", "write -q -P 1 0 128k", "base.raw");
        }

        string[] withBacking = backing == "" ? [] : ["-b", "base.raw", "-F", "raw"];
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. withBacking, "-o", $"preallocation={created}", image, size]);
        }

        Qemu.Ok("qemu-img", dir.Path, "resize", "-q", $"--preallocation={grown}", "theirs.qcow2", newSize);
        var mine = QcowTool.Run("resize", "-q", $"--preallocation={grown}", dir.File("mine.qcow2"), newSize);
        Assert.True(mine.Code == 0, mine.Stderr);

        // The file as long as qemu-img makes it (writing the new area then grows neither), and
        // the same guest bytes. (Where in the file each cluster lands may still differ.)
        Assert.Equal(new FileInfo(dir.File("theirs.qcow2")).Length, new FileInfo(dir.File("mine.qcow2")).Length);
        Qemu.Ok("qemu-img", dir.Path, "compare", "theirs.qcow2", "mine.qcow2");
        Qemu.AssertClean(dir.Path, "mine.qcow2");
    }

    /// <summary>The guest bytes one refcount block's clusters hold.</summary>
    private static long RefcountBlockCovers(int clusterBits, int refcountOrder) =>
        (1L << (clusterBits + 3 - refcountOrder)) << clusterBits;

    private static void AssertCleanAndAsTheirs(TempDir dir, long size)
    {
        var (code, stdout, stderr) = Qemu.Run("qemu-img", dir.Path, "check", "--output=json", "mine.qcow2");
        Assert.True(code == 0, $"qemu-img check exited {code}: {stderr}{stdout}");
        using JsonDocument check = JsonDocument.Parse(stdout);
        Assert.Equal(0, check.RootElement.GetProperty("check-errors").GetInt32());
        Assert.False(check.RootElement.TryGetProperty("leaks", out _), stdout);

        if (Qemu.Run("qemu-img", dir.Path, "compare", "-q", "mine.qcow2", "theirs.qcow2").ExitCode == 0)
        {
            return;
        }

        // qemu-img's image differs: it must be the one that does not read as zeros.
        File.WriteAllBytes(dir.File("zeros.raw"), []);
        Qemu.Ok("qemu-img", dir.Path, "resize", "-q", "-f", "raw", "zeros.raw", size.ToString());
        Assert.Equal(0, Qemu.Run("qemu-img", dir.Path, "compare", "-q", "-F", "raw", "mine.qcow2", "zeros.raw").ExitCode);
        Assert.Equal(1, Qemu.Run("qemu-img", dir.Path, "compare", "-q", "-F", "raw", "theirs.qcow2", "zeros.raw").ExitCode);
    }
}
