// The qcow2 driver's cache options as QEMU checks them when it opens an image (read_cache_sizes):
// cache-size, l2-cache-size and refcount-cache-size together, and l2-cache-entry-size against
// the image's cluster size. l2-cache-size sizes Qcow's L2 cache; the others only need to be valid.
using System;
using System.Collections.Generic;

namespace Qcow.Cli;

internal sealed record Qcow2CacheOptions(long? Combined, long? L2, long? Refcount, long? EntrySize)
{
    public static readonly Qcow2CacheOptions None = new(null, null, null, null);

    /// <summary>The cache options a format node names, taken out of its options.</summary>
    public static Qcow2CacheOptions Take(Dictionary<string, string> options)
    {
        long? Size(string key) => options.TryGetValue(key, out string? text) ? Sizes.Parse(text) : null;
        return new Qcow2CacheOptions(Size("cache-size"), Size("l2-cache-size"), Size("refcount-cache-size"), Size("l2-cache-entry-size"));
    }

    /// <summary>QEMU's refusal of these options for an image with clusters of <paramref name="clusterSize"/> bytes, or null.</summary>
    public string? Refusal(long clusterSize)
    {
        if (Combined is { } combined)
        {
            if (L2 is not null && Refcount is not null)
            {
                return "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time";
            }

            if (L2 > combined)
            {
                return "l2-cache-size may not exceed cache-size";
            }

            if (Refcount > combined)
            {
                return "refcount-cache-size may not exceed cache-size";
            }
        }

        return EntrySize is { } entry && (entry < 512 || entry > clusterSize || (entry & (entry - 1)) != 0)
            ? $"L2 cache entry size must be a power of two between 512 and the cluster size ({clusterSize})"
            : null;
    }
}
