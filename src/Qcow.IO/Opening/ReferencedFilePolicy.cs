// Which files an image may make Qcow open: every backing file (and, later, external data file)
// goes through a policy the caller can tighten or deny.
using System;

namespace Qcow;

/// <summary>What an image names another file as.</summary>
public enum ReferencedFileRole
{
    /// <summary>The image's backing file.</summary>
    BackingFile,
    /// <summary>The image's external data file.</summary>
    ExternalDataFile,
}

/// <summary>A file an image names, and where Qcow would open it.</summary>
/// <param name="ImagePath">The image that names the file.</param>
/// <param name="Name">The name as stored in the image.</param>
/// <param name="ResolvedPath">The path it resolves to (relative names are relative to the image's directory).</param>
/// <param name="Role">What the image uses it for.</param>
public sealed record ReferencedFile(string ImagePath, string Name, string ResolvedPath, ReferencedFileRole Role);

/// <summary>
/// Decides whether Qcow may open a file an image names. Names with a protocol prefix (such as
/// <c>json:</c>, <c>nbd:</c> or <c>http:</c>) are never followed, whatever the policy says.
/// </summary>
public sealed class ReferencedFilePolicy
{
    private readonly Func<ReferencedFile, bool> _allow;

    /// <summary>Creates a policy from a predicate that returns true for files that may be opened.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="allow"/> is null.</exception>
    public ReferencedFilePolicy(Func<ReferencedFile, bool> allow)
    {
        ArgumentNullException.ThrowIfNull(allow);
        _allow = allow;
    }

    /// <summary>Follows every plain file name (as qemu-img does), never a protocol.</summary>
    public static ReferencedFilePolicy Default { get; } = new(static _ => true);

    /// <summary>Opens no referenced file: an image with a backing file cannot be opened.</summary>
    public static ReferencedFilePolicy DenyAll { get; } = new(static _ => false);

    /// <summary>True when the name starts with a protocol prefix (a colon before any slash), as QEMU reads names.</summary>
    public static bool HasProtocolPrefix(string name)
    {
        int colon = name.IndexOf(':');
        int slash = name.IndexOf('/');
        return colon > 0 && (slash < 0 || colon < slash);
    }

    /// <summary>Whether the file may be opened.</summary>
    public bool Allows(ReferencedFile file) => !HasProtocolPrefix(file.Name) && _allow(file);
}
