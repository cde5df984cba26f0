// The core's table walk (TableWalk) over an image file: the tables read as QEMU reads them,
// zeros past the end of the file. The one place the shell walks an image's tables; check, repair,
// the refcount rebuild and qcow layout fold over what it yields.
using System;
using System.Linq;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Qcow.Format;

namespace Qcow.IO;

internal static class ImageWalk
{
    /// <summary>Gives <paramref name="visitor"/> the items of the walk, in QEMU's check order (see TableWalk.fs).</summary>
    public static void Walk(IStorage storage, Header header, WalkScope scope, IWalkVisitor visitor)
    {
        bool everything = scope.IsEverything;
        SnapshotTable snapshots = everything ? SnapshotTable.Read(storage, header) : new SnapshotTable([], 0);
        BitmapDirectory bitmaps = everything ? BitmapDirectory.Read(storage, header) : BitmapDirectory.None;
        TableWalk.walk(
            Reader(storage),
            header,
            (ulong)storage.Length,
            scope,
            ListModule.OfSeq(snapshots.Entries),
            snapshots.Bytes,
            (bitmaps.Offset, bitmaps.Bytes),
            ListModule.OfSeq(bitmaps.Bitmaps.Select(b => new WalkedBitmapTable(b.TableOffset, b.TableEntries))),
            visitor);
    }

    /// <summary>The refcount table's entries as stored, zeros past the end of the file.</summary>
    public static ulong[] RefcountTable(IStorage storage, Header header) => TableWalk.refcountTable(Reader(storage), header);

    /// <summary>Fills a buffer from the file as QEMU reads tables: what lies past its end reads as zeros.</summary>
    private static FSharpFunc<ulong, FSharpFunc<byte[], Unit>> Reader(IStorage storage)
    {
        long fileLength = storage.Length;
        return FuncConvert.FromAction<ulong, byte[]>((offset, buffer) =>
        {
            Array.Clear(buffer);
            if (offset < (ulong)fileLength)
            {
                storage.Read((long)offset, buffer);
            }
        });
    }
}
