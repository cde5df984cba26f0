// A storage layer for tests that sits under the real shell code: it keeps the file's bytes in
// memory, records every write and flush, can fail a chosen I/O or run out of space, and can say
// what the disk would hold had the power been cut after any event (writes not covered by a
// completed flush dropped, the last one optionally torn at 512-byte granularity).
using System;
using System.Collections.Generic;
using System.IO;
using Qcow.IO;

namespace Qcow.Examples.Reliability;

internal sealed class CrashStorage : IStorage
{
    /// <summary>The file system's block: space is taken a block at a time, by writes only.</summary>
    private const int BlockBytes = 4096;

    private readonly byte[] _initial;
    private readonly MemoryStorage _file;
    private readonly HashSet<long> _blocksInUse = new();

    public CrashStorage(string path, byte[] initial, bool canWrite = true)
    {
        _initial = initial;
        _file = new MemoryStorage(path, (byte[])initial.Clone(), canWrite);
        for (long block = 0; block * BlockBytes < initial.Length; block++)
        {
            _blocksInUse.Add(block);
        }
    }

    /// <summary>What happened, in order: writes (with their bytes), flushes, length changes.</summary>
    public List<StorageEvent> Events { get; } = new();

    /// <summary>The event index at which I/O fails with an IOException (-1: never).</summary>
    public int FailAt { get; set; } = -1;

    /// <summary>
    /// The event index from which the disk is full (-1: never): a write that needs a block the
    /// file does not hold yet fails as ENOSPC does, as on a sparse file system (tmpfs, ext4),
    /// where growing the file's length takes no space but writing into the hole does.
    /// </summary>
    public int FullFrom { get; set; } = -1;

    /// <summary>The event index at which one write or flush fails as ENOSPC does (-1: never); later ones succeed.</summary>
    public int NoSpaceAt { get; set; } = -1;

    public string Path => _file.Path;

    /// <summary>The file's bytes now, every write included, flushed or not (the process lives on).</summary>
    public byte[] Contents => _file.ToArray();

    public bool CanWrite => _file.CanWrite;

    public long Length => _file.Length;

    public int Read(long offset, Span<byte> buffer)
    {
        if (FailAt == Events.Count)
        {
            throw new IOException($"injected read error at event {FailAt}");
        }

        return _file.Read(offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        Fail();
        FailOnceForSpace();
        TakeSpace(offset, buffer.Length);
        Events.Add(new StorageEvent(StorageEventKind.Write, offset, buffer.ToArray()));
        _file.Write(offset, buffer);
    }

    public void SetLength(long length)
    {
        Fail();
        Events.Add(new StorageEvent(StorageEventKind.SetLength, length, null));
        _file.SetLength(length);
        _blocksInUse.RemoveWhere(block => block * BlockBytes >= length);
    }

    public void Flush()
    {
        Fail();
        FailOnceForSpace();
        Events.Add(new StorageEvent(StorageEventKind.Flush, 0, null));
    }

    public void Dispose()
    {
    }

    /// <summary>
    /// The disk's bytes had the power been cut right after each event in turn: every event up to
    /// the last flush at or before it, then, if the cut event is a write, its first
    /// <c>tornSectors(cut)</c> 512-byte sectors (counted on the file's sector grid).
    /// </summary>
    public IEnumerable<(int Cut, byte[] Image)> Cuts(Func<int, int> tornSectors)
    {
        var durable = new MemoryStorage(Path, (byte[])_initial.Clone());
        int applied = 0;
        for (int cut = 0; cut < Events.Count; cut++)
        {
            if (Events[cut].Kind == StorageEventKind.Flush)
            {
                for (; applied < cut; applied++)
                {
                    StorageEvent e = Events[applied];
                    if (e.Kind == StorageEventKind.Write)
                    {
                        durable.Write(e.Offset, e.Data!);
                    }
                    else if (e.Kind == StorageEventKind.SetLength)
                    {
                        durable.SetLength(e.Offset);
                    }
                }
            }

            byte[] image = durable.ToArray();
            StorageEvent last = Events[cut];
            int torn = last.Kind == StorageEventKind.Write ? tornSectors(cut) : 0;
            if (torn > 0)
            {
                long end = Math.Min(last.Offset + last.Data!.Length, (last.Offset / 512 + torn) * 512);
                var cutShort = new MemoryStorage(Path, image);
                cutShort.Write(last.Offset, last.Data.AsSpan(0, (int)Math.Max(0, end - last.Offset)));
                image = cutShort.ToArray();
            }

            yield return (cut, image);
        }
    }

    private void FailOnceForSpace()
    {
        if (NoSpaceAt == Events.Count)
        {
            Events.Add(new StorageEvent(StorageEventKind.Failed, 0, null));
            throw NoSpace();
        }
    }

    private IOException NoSpace() => new($"No space left on device : '{Path}'");

    private void TakeSpace(long offset, int length)
    {
        if (length == 0)
        {
            return;
        }

        long first = offset / BlockBytes;
        long last = (offset + length - 1) / BlockBytes;
        bool full = FullFrom >= 0 && Events.Count >= FullFrom;
        for (long block = first; block <= last; block++)
        {
            if (full && !_blocksInUse.Contains(block))
            {
                Events.Add(new StorageEvent(StorageEventKind.Failed, offset, null));
                throw NoSpace();
            }
        }

        for (long block = first; block <= last; block++)
        {
            _blocksInUse.Add(block);
        }
    }

    private void Fail()
    {
        if (FailAt == Events.Count)
        {
            Events.Add(new StorageEvent(StorageEventKind.Failed, 0, null));
            throw new IOException($"injected I/O error at event {FailAt}");
        }
    }
}

internal enum StorageEventKind
{
    Write,
    Flush,
    SetLength,
    Failed,
}

internal sealed record StorageEvent(StorageEventKind Kind, long Offset, byte[]? Data);
