// IStorage on a real file: RandomAccess on a SafeFileHandle, fsync for Flush (unless flushes
// are to be ignored, as QEMU's cache=unsafe ignores them).
using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Win32.SafeHandles;

namespace Qcow.IO;

internal sealed class FileStorage : IStorage
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ignoreFlushes;

    private FileStorage(string path, SafeFileHandle handle, bool canWrite, bool ignoreFlushes)
    {
        Path = path;
        _handle = handle;
        CanWrite = canWrite;
        _ignoreFlushes = ignoreFlushes;
    }

    public string Path { get; }

    public bool CanWrite { get; }

    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>
    /// Opens an existing file and takes QEMU's image locks on it (<paramref name="shareAll"/> is
    /// qemu-img's -U); with <paramref name="ignoreFlushes"/> it never fsyncs (QEMU's cache=unsafe,
    /// qemu-img convert's default).
    /// </summary>
    /// <exception cref="QcowLockedException">Another process holds the image in a conflicting way.</exception>
    public static FileStorage Open(string path, bool writable, bool ignoreFlushes = false, bool shareAll = false)
    {
        SafeFileHandle handle = OpenHandle(
            path,
            FileMode.Open,
            writable ? FileAccess.ReadWrite : FileAccess.Read,
            writable ? WriterShare : FileShare.ReadWrite);
        try
        {
            ImageLock.Acquire(handle, path, writable, shareAll);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        return new FileStorage(path, handle, writable, ignoreFlushes);
    }

    /// <summary>Opens the file; a failure says what QEMU says: "Could not open 'PATH': " and the system's reason.</summary>
    private static SafeFileHandle OpenHandle(string path, FileMode mode, FileAccess access, FileShare share)
    {
        try
        {
            return File.OpenHandle(path, mode, access, share);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"Could not open '{path}': No such file or directory", path, e);
        }
        catch (UnauthorizedAccessException e)
        {
            string reason = Directory.Exists(path) ? "Is a directory" : "Permission denied";
            throw new UnauthorizedAccessException($"Could not open '{path}': {reason}", e);
        }
    }

    /// <summary>
    /// Creates the file, or empties an existing one, as QEMU does: opened without truncating,
    /// locked as a writer, and only then truncated, so that an image another process has open is
    /// refused rather than wiped.
    /// </summary>
    /// <exception cref="QcowLockedException">Another process has the file open.</exception>
    public static FileStorage Create(string path)
    {
        SafeFileHandle handle = OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, WriterShare);
        try
        {
            ImageLock.Acquire(handle, path, writable: true, shareAll: false);
            RandomAccess.SetLength(handle, 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        return new FileStorage(path, handle, canWrite: true, ignoreFlushes: false);
    }

    /// <summary>
    /// Where QEMU's locks are taken (Linux), they decide who may open an image; elsewhere a writer
    /// keeps other writers out with the platform's sharing mode.
    /// </summary>
    private static FileShare WriterShare => ImageLock.IsAvailable ? FileShare.ReadWrite : FileShare.Read;

    public int Read(long offset, Span<byte> buffer)
    {
        RefuseBeyondRequestLimit(offset, buffer.Length);
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer[total..], offset + total);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    public async ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        RefuseBeyondRequestLimit(offset, buffer.Length);
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await RandomAccess.ReadAsync(_handle, buffer[total..], offset + total, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        RefuseBeyondRequestLimit(offset, buffer.Length);
        RandomAccess.Write(_handle, buffer, offset);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        RefuseBeyondRequestLimit(offset, buffer.Length);
        return RandomAccess.WriteAsync(_handle, buffer, offset, cancellationToken);
    }

    /// <summary>QEMU's block layer fails a request reaching past its largest offset with EIO; so does Qcow.</summary>
    private void RefuseBeyondRequestLimit(long offset, int length)
    {
        if (offset < 0 || (ulong)offset > Qcow.Format.Limits.MaxRequestEnd - (ulong)length)
        {
            throw new IOException($"{Path}: Input/output error (a request at 0x{offset:x} reaches past the largest offset QEMU reads or writes)");
        }
    }

    public void SetLength(long length) => RandomAccess.SetLength(_handle, length);

    /// <summary>Punches a hole (the size stays): the file system takes the blocks back, the range reads as zeros. Where it cannot, nothing changes, which a discard allows.</summary>
    public void Discard(long offset, long length)
    {
        if (CanWrite && OperatingSystem.IsLinux())
        {
            _ = Fallocate((int)_handle.DangerousGetHandle(), PunchHole | KeepSize, offset, length);
        }
    }

    public void Flush()
    {
        if (!_ignoreFlushes)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    /// <summary>
    /// Whether the bytes from <paramref name="offset"/> on are data or a hole, and for how many
    /// bytes (at most <paramref name="maxLength"/>), as QEMU's file driver finds out with
    /// SEEK_DATA and SEEK_HOLE; where the file system cannot tell, everything is data.
    /// </summary>
    public (bool Data, long Length) Allocation(long offset, long maxLength)
    {
        if (!OperatingSystem.IsLinux())
        {
            return (true, maxLength);
        }

        int fd = (int)_handle.DangerousGetHandle();
        long data = Seek(fd, offset, SeekData);
        if (data < 0)
        {
            // ENXIO: a hole up to the end of the file; anything else: no information.
            return (Marshal.GetLastPInvokeError() != NoSuchDeviceOrAddress, maxLength);
        }

        if (data > offset)
        {
            return (false, Math.Min(maxLength, data - offset));
        }

        long hole = Seek(fd, offset, SeekHole);
        return (true, hole > offset ? Math.Min(maxLength, hole - offset) : maxLength);
    }

    /// <summary>Bytes the file system has allocated to the file (st_blocks × 512, QEMU's actual size).</summary>
    public long AllocatedBytes => Allocated(_handle);

    private static long Allocated(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
        {
            return RandomAccess.GetLength(handle);
        }

        // struct stat on 64-bit Linux (x86-64 and the generic layout of arm64 alike) keeps
        // st_blocks at byte 64; the buffer is larger than either layout.
        byte[] stat = new byte[256];
        try
        {
            return FileStatus((int)handle.DangerousGetHandle(), stat) == 0 ? BitConverter.ToInt64(stat, 64) * 512 : RandomAccess.GetLength(handle);
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.33 exports fstat under another name: the length then stands in.
            return RandomAccess.GetLength(handle);
        }
    }

    public void Dispose() => _handle.Dispose();

    private const int SeekData = 3;
    private const int SeekHole = 4;
    private const int NoSuchDeviceOrAddress = 6;
    private const int KeepSize = 0x01;
    private const int PunchHole = 0x02;

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call.
    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long Seek(int fd, long offset, int whence);

    [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static extern int FileStatus(int fd, byte[] stat);

    [DllImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static extern int Fallocate(int fd, int mode, long offset, long length);
#pragma warning restore SYSLIB1054
}
