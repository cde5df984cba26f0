// The format facts of an open image, as qemu-img info reports them.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

/// <summary>What an image's header and its extensions say, and how much of the file is allocated.</summary>
public sealed class QcowInfo
{
    internal QcowInfo()
    {
    }

    /// <summary>The image file's path.</summary>
    public string Path { get; internal init; } = "";

    /// <summary>The image's format.</summary>
    public QcowImageFormat Format { get; internal init; }

    /// <summary>1, 2 or 3 (0 for raw).</summary>
    public int Version { get; internal init; }

    /// <summary>qcow2's compatibility level; null for qcow v1 and raw.</summary>
    public QcowCompat? Compat { get; internal init; }

    /// <summary>Virtual size in bytes.</summary>
    public long VirtualSize { get; internal init; }

    /// <summary>Bytes the file occupies on disk (qemu-img's "disk size").</summary>
    public long ActualSize { get; internal init; }

    /// <summary>Cluster size in bytes (0 for raw).</summary>
    public int ClusterSize { get; internal init; }

    /// <summary>Refcount width in bits (0 for qcow v1 and raw, which have no refcounts).</summary>
    public int RefcountBits { get; internal init; }

    /// <summary>The lazy refcounts feature is set.</summary>
    public bool LazyRefcounts { get; internal init; }

    /// <summary>The image is marked corrupt.</summary>
    public bool Corrupt { get; internal init; }

    /// <summary>The image is marked dirty (refcounts may be stale).</summary>
    public bool Dirty { get; internal init; }

    /// <summary>Extended L2 entries (subclusters) are in use.</summary>
    public bool ExtendedL2 { get; internal init; }

    /// <summary>How compressed clusters are compressed.</summary>
    public QcowCompressionType CompressionType { get; internal init; }

    /// <summary>The backing file's name as stored; null for none.</summary>
    public string? BackingFile { get; internal init; }

    /// <summary>The backing file's path as Qcow resolves it; null for none.</summary>
    public string? FullBackingFile { get; internal init; }

    /// <summary>The backing format stored in the image; null if none is stored.</summary>
    public string? BackingFormat { get; internal init; }

    /// <summary>The external data file's name as stored; null for none.</summary>
    public string? DataFile { get; internal init; }

    /// <summary>The data file is a raw image of the guest (data_file_raw).</summary>
    public bool DataFileRaw { get; internal init; }

    /// <summary>Number of internal snapshots.</summary>
    public int SnapshotCount => Snapshots.Count;

    /// <summary>The internal snapshots, in the snapshot table's order.</summary>
    public IReadOnlyList<QcowSnapshotInfo> Snapshots { get; internal init; } = [];

    /// <summary>The persistent dirty bitmaps, in the bitmap directory's order.</summary>
    public IReadOnlyList<QcowBitmapInfo> Bitmaps { get; internal init; } = [];

    /// <summary>How the guest data is encrypted; null when it is not.</summary>
    public QcowEncryptionInfo? Encryption { get; internal init; }

    /// <summary>Where QEMU would keep saved VM state: the guest offset past the last L1 entry's reach (qemu-io's "vm state offset"; 0 for qcow v1 and raw).</summary>
    public long VmStateOffset { get; internal init; }

    /// <summary>Feature bits the image sets: incompatible, compatible, autoclear (zeros for qcow v1 and raw).</summary>
    public IReadOnlyList<ulong> FeatureBits { get; internal init; } = [0, 0, 0];

    /// <summary>The backing file's facts, when the image was opened with its backing files; null otherwise or without one.</summary>
    public QcowInfo? Backing { get; internal init; }

    internal static QcowInfo Of(IBlockDevice device)
    {
        long actual = device.AllocatedFileBytes;
        if (device is not QcowDevice q)
        {
            return new QcowInfo { Path = device.Path, Format = QcowImageFormat.Raw, VirtualSize = device.Length, ActualSize = actual };
        }

        Header? h = q.Header;
        ImageLayout layout = q.Layout;
        return new QcowInfo
        {
            Path = q.Path,
            Format = layout.Version == 1 ? QcowImageFormat.Qcow : QcowImageFormat.Qcow2,
            Version = layout.Version,
            Compat = layout.Version switch { 3 => QcowCompat.V1_1, 2 => QcowCompat.V0_10, _ => null },
            VirtualSize = q.Length,
            ActualSize = actual,
            ClusterSize = layout.ClusterSize,
            RefcountBits = layout.HasRefcounts ? 1 << layout.Refcounts.RefcountOrder : 0,
            LazyRefcounts = h != null && HeaderModule.hasLazyRefcounts(h),
            Corrupt = h != null && HeaderModule.isCorrupt(h),
            Dirty = h != null && HeaderModule.isDirty(h),
            ExtendedL2 = h != null && (h.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0,
            CompressionType = layout.CompressionType == 1 ? QcowCompressionType.Zstd : QcowCompressionType.Zlib,
            BackingFile = q.BackingFileName,
            FullBackingFile = q.BackingFileName is null ? null : ImageOpener.ResolveBacking(q.Path, q.BackingFileName),
            BackingFormat = q.BackingFormat,
            DataFile = h is null ? null : Microsoft.FSharp.Core.OptionModule.ToObj(HeaderModule.externalDataFile(h)),
            DataFileRaw = h != null && (h.AutoclearFeatures & HeaderModule.RawExternalDataBit) != 0,
            Snapshots = [.. q.Snapshots.Select(QcowSnapshotInfo.Of)],
            Bitmaps = h is null ? [] : [.. q.ReadBitmaps().Bitmaps.Select(QcowBitmapInfo.Of)],
            Encryption = QcowEncryptionInfo.Of(q),
            VmStateOffset = layout.Version >= 2 ? (long)GeometryModule.l1EntriesFor(layout.Geometry, layout.VirtualSize) << layout.L1Shift : 0,
            FeatureBits = h is null ? [0, 0, 0] : [h.IncompatibleFeatures, h.CompatibleFeatures, h.AutoclearFeatures],
            Backing = q.Backing is { } backing ? Of(backing) : null,
        };
    }
}

/// <summary>One internal snapshot, as the snapshot table records it.</summary>
public sealed class QcowSnapshotInfo
{
    internal QcowSnapshotInfo()
    {
    }

    /// <summary>The snapshot's ID (QEMU numbers them "1", "2", …).</summary>
    public string Id { get; internal init; } = "";

    /// <summary>The snapshot's name (its tag).</summary>
    public string Name { get; internal init; } = "";

    /// <summary>Bytes of saved VM state.</summary>
    public long VmStateSize { get; internal init; }

    /// <summary>When the snapshot was taken: seconds since the Unix epoch.</summary>
    public long DateSeconds { get; internal init; }

    /// <summary>The nanoseconds of <see cref="DateSeconds"/>.</summary>
    public long DateNanoseconds { get; internal init; }

    /// <summary>The guest's clock when the snapshot was taken, in nanoseconds.</summary>
    public long VmClockNanoseconds { get; internal init; }

    /// <summary>The guest's instruction count when the snapshot was taken, if recorded (record/replay).</summary>
    public long? Icount { get; internal init; }

    internal static QcowSnapshotInfo Of(Snapshot s) => new()
    {
        Id = s.Id,
        Name = s.Name,
        VmStateSize = (long)s.VmStateSize,
        DateSeconds = s.DateSeconds,
        DateNanoseconds = s.DateNanoseconds,
        VmClockNanoseconds = (long)s.VmClockNanoseconds,
        Icount = Microsoft.FSharp.Core.OptionModule.ToNullable(SnapshotModule.icount(s)) is { } n ? (long)n : null,
    };
}

/// <summary>One persistent dirty bitmap, as the bitmap directory records it.</summary>
public sealed class QcowBitmapInfo
{
    internal QcowBitmapInfo()
    {
    }

    /// <summary>The bitmap's name.</summary>
    public string Name { get; internal init; } = "";

    /// <summary>Guest bytes per bit.</summary>
    public long Granularity { get; internal init; }

    /// <summary>The bitmap was in use when the image was last closed, so its contents are not to be trusted (QEMU's "in-use").</summary>
    public bool InUse { get; internal init; }

    /// <summary>QEMU tracks writes in it whenever the image is open (QEMU's "auto").</summary>
    public bool Auto { get; internal init; }

    internal static QcowBitmapInfo Of(Bitmap b) => new()
    {
        Name = b.Name,
        Granularity = 1L << b.GranularityBits,
        InUse = (b.Flags & 1) != 0,
        Auto = (b.Flags & 2) != 0,
    };
}

/// <summary>An image's encryption format.</summary>
public enum QcowEncryptionFormat
{
    /// <summary>QEMU's legacy AES-CBC (deprecated).</summary>
    Aes,
    /// <summary>A LUKS1 header inside the image.</summary>
    Luks,
}

/// <summary>How an image's guest data is encrypted, as qemu-img info describes it.</summary>
public sealed class QcowEncryptionInfo
{
    internal QcowEncryptionInfo()
    {
    }

    /// <summary>The encryption format.</summary>
    public QcowEncryptionFormat Format { get; internal init; }

    /// <summary>The LUKS header's facts (QEMU's QCryptoBlockInfoLUKS); null for legacy AES and for a qcow2 image that records no LUKS header.</summary>
    public QcowLuksInfo? Luks { get; internal init; }

    internal static QcowEncryptionInfo? Of(QcowDevice q)
    {
        if (!q.IsEncrypted)
        {
            return null;
        }

        uint method = q.Header?.CryptMethod ?? q.V1Header!.CryptMethod;
        return method == 1
            ? new QcowEncryptionInfo { Format = QcowEncryptionFormat.Aes }
            : new QcowEncryptionInfo { Format = QcowEncryptionFormat.Luks, Luks = q.ReadLuksHeader() is { } l ? QcowLuksInfo.Of(l) : null };
    }
}

/// <summary>A LUKS1 header, in QEMU's terms: the cipher "aes-256", mode "xts", IV generator "plain64".</summary>
public sealed class QcowLuksInfo
{
    internal QcowLuksInfo()
    {
    }

    /// <summary>The cipher and its key size in bits, as QEMU names it ("aes-256").</summary>
    public string CipherAlgorithm { get; internal init; } = "";

    /// <summary>The cipher mode ("xts", "cbc").</summary>
    public string CipherMode { get; internal init; } = "";

    /// <summary>The IV generator ("plain64", "essiv").</summary>
    public string IvGenerator { get; internal init; } = "";

    /// <summary>The IV generator's hash (for essiv); null when it has none.</summary>
    public string? IvHashAlgorithm { get; internal init; }

    /// <summary>The hash of the key derivation ("sha256").</summary>
    public string HashAlgorithm { get; internal init; } = "";

    /// <summary>Where the encrypted payload starts, in bytes from the LUKS header.</summary>
    public long PayloadOffset { get; internal init; }

    /// <summary>PBKDF2 iterations of the master key digest.</summary>
    public long MasterKeyIterations { get; internal init; }

    /// <summary>The LUKS header's UUID.</summary>
    public string Uuid { get; internal init; } = "";

    /// <summary>The eight key slots.</summary>
    public IReadOnlyList<QcowLuksSlot> Slots { get; internal init; } = [];

    internal static QcowLuksInfo Of(LuksHeader l)
    {
        string[] mode = l.CipherMode.Split('-', 2);
        string[] ivgen = (mode.Length > 1 ? mode[1] : "").Split(':', 2);
        // XTS keys are two cipher keys, one for the data and one for the tweak.
        long keyBits = (mode[0] == "xts" ? l.KeyBytes / 2 : l.KeyBytes) * 8L;
        return new QcowLuksInfo
        {
            CipherAlgorithm = $"{l.CipherName}-{keyBits}",
            CipherMode = mode[0],
            IvGenerator = ivgen[0],
            IvHashAlgorithm = ivgen.Length > 1 ? ivgen[1] : null,
            HashAlgorithm = l.HashSpec,
            PayloadOffset = l.PayloadOffset,
            MasterKeyIterations = l.MasterKeyIterations,
            Uuid = l.Uuid,
            Slots = [.. l.Slots.Select(s => new QcowLuksSlot { Active = s.Active, Iterations = s.Iterations, Stripes = s.Stripes, KeyOffset = s.KeyOffset })],
        };
    }
}

/// <summary>One LUKS key slot.</summary>
public sealed class QcowLuksSlot
{
    internal QcowLuksSlot()
    {
    }

    /// <summary>The slot holds a key.</summary>
    public bool Active { get; internal init; }

    /// <summary>PBKDF2 iterations of the slot's passphrase.</summary>
    public long Iterations { get; internal init; }

    /// <summary>The anti-forensic splitter's stripes.</summary>
    public long Stripes { get; internal init; }

    /// <summary>Where the slot's key material starts, in bytes from the LUKS header.</summary>
    public long KeyOffset { get; internal init; }
}
