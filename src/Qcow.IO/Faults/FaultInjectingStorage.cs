// The file under an image, failing requests as QEMU's blkdebug fails them: an event arms the
// faults whose event it is (a new arming replaces the faults armed before), and each read or
// write then fails with the first armed fault that covers it; a fault that fires once is gone after.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Qcow.IO;

internal sealed class FaultInjectingStorage(IStorage inner, QcowFaultInjection injection) : IStorage
{
    private readonly object _gate = new();
    private readonly List<QcowFault> _faults = [.. injection.Faults];
    private readonly List<QcowFault> _armed = [];
    private int _state = 1;

    public string Path => inner.Path;

    public bool CanWrite => inner.CanWrite;

    public long Length => inner.Length;

    public long AllocatedBytes => inner.AllocatedBytes;

    public void Announce(QcowDriverEvent driverEvent)
    {
        lock (_gate)
        {
            bool armedNow = false;
            foreach (QcowFault fault in _faults.Where(f => f.Event == driverEvent && (f.State == 0 || f.State == _state)))
            {
                if (!armedNow)
                {
                    _armed.Clear();
                    armedNow = true;
                }

                _armed.Insert(0, fault);
            }

            int next = _state;
            foreach (QcowFaultStateChange change in injection.StateChanges.Where(c => c.Event == driverEvent && (c.State == 0 || c.State == _state)))
            {
                next = change.NewState;
            }

            _state = next;
        }
    }

    public int Read(long offset, Span<byte> buffer)
    {
        Check(offset, buffer.Length);
        return inner.Read(offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        Check(offset, buffer.Length);
        inner.Write(offset, buffer);
    }

    public void SetLength(long length) => inner.SetLength(length);

    public void Discard(long offset, long length) => inner.Discard(offset, length);

    /// <summary>Announces the flush; faults fail reads and writes only (blkdebug's default I/O types), so the flush itself goes through.</summary>
    public void Flush()
    {
        Announce(QcowDriverEvent.FlushToDisk);
        inner.Flush();
    }

    public void Dispose() => inner.Dispose();

    /// <summary>Fails a read or write with the first armed fault that covers it.</summary>
    private void Check(long offset, long length)
    {
        lock (_gate)
        {
            QcowFault? fault = _armed.FirstOrDefault(f => f.Offset is not { } at || (at >= offset && at < offset + length));
            if (fault is null || fault.Errno == 0)
            {
                return;
            }

            if (fault.Once)
            {
                _armed.Remove(fault);
                _faults.Remove(fault);
            }

            throw new IOException(Strerror(fault.Errno), fault.Errno);
        }
    }

    /// <summary>The C library's words for the errno values a fault is given.</summary>
    private static string Strerror(int errno) => errno switch
    {
        1 => "Operation not permitted",
        5 => "Input/output error",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        22 => "Invalid argument",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        95 => "Operation not supported",
        _ => $"Unknown error {errno}",
    };
}
