// The exception for a change that would give a cluster more references than the image's refcount
// width holds (a snapshot of an image with narrow refcounts), refused before anything switches.
using System;

namespace Qcow;

/// <summary>
/// A cluster would have more references than the image's refcount entries hold: a snapshot
/// shares every cluster once more. Widening the refcounts (QcowImage.Amend with
/// RefcountBits) makes room. The image is left as it was.
/// </summary>
public sealed class QcowRefcountOverflowException : InvalidOperationException
{
    internal QcowRefcountOverflowException(string path, int refcountBits, string where)
        : base($"{path}: {where}: more references than {refcountBits}-bit refcounts hold; use amend to widen refcount_bits")
    {
        ImagePath = path;
        RefcountBits = refcountBits;
    }

    /// <summary>The image that was left unchanged.</summary>
    public string ImagePath { get; }

    /// <summary>The image's refcount width.</summary>
    public int RefcountBits { get; }
}
