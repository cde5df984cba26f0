// Image locking as QEMU's file driver does it, so that QEMU and Qcow see each other's locks:
// a shared open-file-description lock on byte 100 + p for each permission p an opener holds,
// and on byte 200 + p for each permission it does not let others hold. An opener may go ahead
// when nobody else locks 200 + p for a permission it wants, nor 100 + p for one it refuses.
using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using Microsoft.Win32.SafeHandles;

namespace Qcow.IO;

internal static class ImageLock
{
    private const long HeldBase = 100;
    private const long RefusedBase = 200;

    // QEMU's permission bits, in bit order (BLK_PERM_*).
    private const int ConsistentRead = 0;
    private const int Write = 1;
    private const int Resize = 3;
    private static readonly string[] s_names = ["consistent read", "write", "write unchanged", "resize"];

    // Linux's fcntl commands and lock types (the same on every 64-bit architecture .NET runs on).
    private const int OfdGetLock = 36;
    private const int OfdSetLock = 37;
    private const short ReadLock = 0;
    private const short WriteLock = 1;
    private const short Unlocked = 2;
    private const int InvalidArgument = 22;
    private const int NotSupported = 95;

    private const int ConflictAttempts = 10;
    private static readonly TimeSpan ConflictPause = TimeSpan.FromMilliseconds(10);

    /// <summary>Whether QEMU's open-file-description locks exist here (64-bit Linux).</summary>
    public static bool IsAvailable => OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    /// <summary>
    /// Takes the locks QEMU takes for an image opened this way: a writer holds consistent read,
    /// write and resize; a reader holds consistent read; both refuse others write and resize,
    /// unless <paramref name="shareAll"/> (qemu-img's -U, read-only opens only) refuses nothing.
    /// </summary>
    /// <exception cref="QcowLockedException">Another open of the file conflicts.</exception>
    public static void Acquire(SafeFileHandle handle, string path, bool writable, bool shareAll)
    {
        if (writable && shareAll)
        {
            throw new ArgumentException("force-share=on can only be used with read-only images");
        }

        if (!IsAvailable)
        {
            return;
        }

        int[] held = writable ? [ConsistentRead, Write, Resize] : [ConsistentRead];
        int[] refused = shareAll ? [] : [Write, Resize];
        int fd = (int)handle.DangerousGetHandle();
        foreach (int p in held)
        {
            if (!Lock(fd, HeldBase + p))
            {
                return;
            }
        }

        foreach (int p in refused)
        {
            Lock(fd, RefusedBase + p);
        }

        // A child process forked by this one holds copies of its descriptors, and their locks,
        // until it execs: a conflict that lasts only that long is not another user of the image.
        for (int attempt = 1; ; attempt++)
        {
            string? conflict = Conflict(fd, held, refused);
            if (conflict is null)
            {
                return;
            }

            if (attempt == ConflictAttempts)
            {
                throw new QcowLockedException(path, conflict, LockHolders.Describe(path));
            }

            Thread.Sleep(ConflictPause);
        }
    }

    /// <summary>QEMU's words for the first conflicting lock, or null when there is none.</summary>
    private static string? Conflict(int fd, int[] held, int[] refused)
    {
        foreach (int p in held)
        {
            if (LockedByOthers(fd, RefusedBase + p))
            {
                return $"Failed to get \"{s_names[p]}\" lock";
            }
        }

        foreach (int p in refused)
        {
            if (LockedByOthers(fd, HeldBase + p))
            {
                return $"Failed to get shared \"{s_names[p]}\" lock";
            }
        }

        return null;
    }

    /// <summary>Takes a shared lock on one byte; false when the file system has no such locks (QEMU then goes on unlocked).</summary>
    private static bool Lock(int fd, long at)
    {
        var request = new FileLock { Type = ReadLock, Start = at, Length = 1 };
        if (Fcntl(fd, OfdSetLock, ref request) == 0)
        {
            return true;
        }

        int error = Marshal.GetLastPInvokeError();
        if (error is InvalidArgument or NotSupported)
        {
            return false;
        }

        throw new IOException($"cannot lock byte {at} of the image: errno {error}");
    }

    /// <summary>Whether another open file description holds a lock that an exclusive lock on the byte would conflict with.</summary>
    private static bool LockedByOthers(int fd, long at)
    {
        var probe = new FileLock { Type = WriteLock, Start = at, Length = 1 };
        if (Fcntl(fd, OfdGetLock, ref probe) != 0)
        {
            return false;
        }

        return probe.Type != Unlocked;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct FileLock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call.
    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, ref FileLock request);
#pragma warning restore SYSLIB1054
}
