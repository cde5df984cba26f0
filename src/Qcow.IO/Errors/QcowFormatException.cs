// The one exception type for images whose bytes are wrong or use what Qcow cannot handle.
using System;

namespace Qcow;

/// <summary>What kind of problem a <see cref="QcowFormatException"/> reports.</summary>
public enum QcowFormatErrorKind
{
    /// <summary>The file is not a qcow or qcow2 image.</summary>
    BadMagic,
    /// <summary>The image's version is not 1, 2 or 3.</summary>
    UnsupportedVersion,
    /// <summary>The file is in another image format (vmdk, vdi, …) that Qcow does not read.</summary>
    UnsupportedFormat,
    /// <summary>The file ends before a structure that must be there.</summary>
    Truncated,
    /// <summary>A field is outside the limits QEMU enforces.</summary>
    FieldOutOfRange,
    /// <summary>A table or cluster offset is not cluster-aligned.</summary>
    Misaligned,
    /// <summary>A header extension runs past the extension area.</summary>
    ExtensionTooLarge,
    /// <summary>The image uses a feature Qcow does not support (yet).</summary>
    UnsupportedFeature,
    /// <summary>A table entry has reserved bits set.</summary>
    ReservedBitsSet,
    /// <summary>A table entry points outside the image.</summary>
    EntryOutOfRange,
    /// <summary>A compressed cluster does not decompress to one cluster.</summary>
    BadCompressedData,
    /// <summary>Fields contradict each other, or the image is marked corrupt.</summary>
    Inconsistent,
    /// <summary>A write would have overwritten live metadata: it was refused and the image marked corrupt.</summary>
    OverlapsMetadata,
}

/// <summary>The structure of the image in which a problem was found.</summary>
public enum QcowStructure
{
    /// <summary>The header's fixed fields.</summary>
    Header,
    /// <summary>A header extension.</summary>
    HeaderExtension,
    /// <summary>The backing file name.</summary>
    BackingFileName,
    /// <summary>The L1 table.</summary>
    L1Table,
    /// <summary>An L2 table.</summary>
    L2Table,
    /// <summary>The refcount table.</summary>
    RefcountTable,
    /// <summary>A refcount block.</summary>
    RefcountBlock,
    /// <summary>A compressed cluster.</summary>
    CompressedCluster,
    /// <summary>The snapshot table.</summary>
    SnapshotTable,
    /// <summary>A data cluster.</summary>
    DataCluster,
    /// <summary>The feature name table.</summary>
    FeatureNameTable,
}

/// <summary>
/// An image's bytes are malformed, or use a feature Qcow does not support: which image, which
/// structure, at which byte offset of the image file.
/// </summary>
public sealed class QcowFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="imagePath">The image file the problem was found in.</param>
    /// <param name="kind">What kind of problem it is.</param>
    /// <param name="structure">The structure it was found in.</param>
    /// <param name="offset">The byte offset in the image file.</param>
    /// <param name="detail">One sentence saying what is wrong.</param>
    /// <param name="marksImageCorrupt">Finding the problem marked the image corrupt, as QEMU marks it.</param>
    public QcowFormatException(string imagePath, QcowFormatErrorKind kind, QcowStructure structure, long offset, string detail, bool marksImageCorrupt = false)
        : base($"{imagePath}: {detail}")
    {
        ImagePath = imagePath;
        Kind = kind;
        Structure = structure;
        Offset = offset;
        Detail = detail;
        MarksImageCorrupt = marksImageCorrupt;
    }

    /// <summary>
    /// Finding the problem marked the image corrupt (QEMU's fatal corruption event: the corrupt
    /// bit set in a version 3 header, no more writes this open); <see cref="Detail"/> is then the reason in QEMU's words.
    /// </summary>
    public bool MarksImageCorrupt { get; }

    /// <summary>The image file the problem was found in.</summary>
    public string ImagePath { get; }

    /// <summary>What kind of problem it is.</summary>
    public QcowFormatErrorKind Kind { get; }

    /// <summary>The structure the problem was found in.</summary>
    public QcowStructure Structure { get; }

    /// <summary>The byte offset in the image file where the problem was found.</summary>
    public long Offset { get; }

    /// <summary>One sentence saying what is wrong, without the image's name.</summary>
    public string Detail { get; }
}
