// The JSON verbs against qemu-img over images qemu-img made and qemu-io filled, one per kind of
// image people have: the text of info, map, check and measure (--output=json) equals
// qemu-img's, and so do the exit codes; the guest bytes read as qemu-img convert reads them.
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class JsonVerbsMatrixTests
{
    /// <summary>Data, zeros, a discard and (where nothing is preallocated) one compressed cluster at 4 MiB.</summary>
    private static string[] Fill(string options)
    {
        string cluster = options.Contains("cluster_size=512") ? "512" : options.Contains("cluster_size=4k") ? "4k" : options.Contains("cluster_size=2M") ? "2M" : "64k";
        string[] compressed = options.Contains("preallocation") || options.Contains("data_file") ? [] : [$"write -c -P 2 4M {cluster}"];
        return ["write -P 1 0 100k", .. compressed, "write -z 2M 64k", "write -P 3 3M 4k", "discard 3M 4k", "write -P 4 5M 1M"];
    }

    [OracleTheory]
    [InlineData("compat=0.10")]
    [InlineData("compat=1.1,cluster_size=512,refcount_bits=1")]
    [InlineData("cluster_size=4k,refcount_bits=8")]
    [InlineData("cluster_size=2M,refcount_bits=64")]
    [InlineData("compression_type=zstd")]
    [InlineData("lazy_refcounts=on")]
    [InlineData("preallocation=metadata")]
    [InlineData("preallocation=falloc")]
    [InlineData("preallocation=full")]
    [InlineData("extended_l2=on")]
    [InlineData("extended_l2=on,cluster_size=2M,compression_type=zstd")]
    [InlineData("data_file=base.data")]
    [InlineData("data_file=base.data,data_file_raw=on")]
    [InlineData("snapshot")]
    [InlineData("bitmap")]
    [InlineData("backing chain")]
    public void InfoMapCheckMeasure_PrintWhatQemuImgPrints(string kind)
    {
        using var dir = new TempDir();
        string options = kind is "snapshot" or "bitmap" or "backing chain" ? "cluster_size=65536" : kind;
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", options, "base.qcow2", "16M");
        Qemu.Io(dir.Path, "base.qcow2", Fill(options));
        string image = "base.qcow2";
        switch (kind)
        {
            case "snapshot":
                Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "one", "base.qcow2");
                Qemu.Io(dir.Path, "base.qcow2", "write -P 5 0 64k");
                break;
            case "bitmap":
                Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "base.qcow2", "b");
                Qemu.Io(dir.Path, "base.qcow2", "write -P 5 0 64k");
                break;
            case "backing chain":
                Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "20M");
                Qemu.Io(dir.Path, "top.qcow2", "write -P 6 64k 64k", "write -z 5M 64k");
                image = "top.qcow2";
                break;
            case var extended when extended.StartsWith("extended_l2", System.StringComparison.Ordinal):
                // Subclusters: partial writes, a zeroed and a discarded subcluster, over a backing file.
                Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=32k", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
                Qemu.Io(dir.Path, "top.qcow2", "write -P 8 0 1k", "write -P 9 3M 3k", "write -z 5M 1k", "discard 3M 1k");
                Qemu.Io(dir.Path, "base.qcow2", "write -P 7 7M 3k", "write -z 7M 1k");
                image = "top.qcow2";
                break;
        }

        string path = dir.File(image);
        foreach (string[] args in new[]
        {
            new[] { "info", "--output=json", path },
            ["info", "--output=json", "--backing-chain", path],
            ["map", "--output=json", path],
            ["check", "--output=json", path],
            ["measure", "--output=json", "-O", "qcow2", path],
        })
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, args);
            var stdout = new System.IO.StringWriter();
            int code = Cli.Cli.Run(args, stdout, new System.IO.StringWriter());
            Assert.True(theirs.ExitCode == code, $"{string.Join(' ', args)}: exit {code}, qemu-img {theirs.ExitCode}");
            Assert.Equal(theirs.Stdout, stdout.ToString());
        }

        using QcowImage opened = QcowImage.Open(path, new QcowOpenOptions { ReadOnly = true });
        byte[] guest = new byte[opened.Length];
        opened.Read(0, guest);
        Assert.Equal(Qemu.RawBytes(dir.Path, image), guest);
    }
}
