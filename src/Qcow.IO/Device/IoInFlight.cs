// Counts the data reads (and in-place asynchronous writes) a device runs outside its lock, one
// counter per processor (each on its own cache line), so that threads on different cores do not
// contend for one counter.
using System;
using System.Threading;

namespace Qcow.IO;

internal sealed class IoInFlight
{
    /// <summary>Ints per 64-byte cache line: one counter a line.</summary>
    private const int Stride = 16;

    private readonly int _processors = Environment.ProcessorCount;

    // A line of padding before the first counter and after the last.
    private readonly int[] _counters = new int[(Environment.ProcessorCount + 2) * Stride];

    /// <summary>Counts a read in; returns what <see cref="Exit"/> takes.</summary>
    public int Enter()
    {
        int slot = ((Thread.GetCurrentProcessorId() % _processors) + 1) * Stride;
        Interlocked.Increment(ref _counters[slot]);
        return slot;
    }

    /// <summary>Counts out the read <see cref="Enter"/> counted in (on whichever processor it ends).</summary>
    public void Exit(int slot) => Interlocked.Decrement(ref _counters[slot]);

    /// <summary>
    /// Waits until no read is in flight. The caller holds the lock readers enter under, so no new
    /// read starts meanwhile; those in flight take no lock, so they finish.
    /// </summary>
    public void WaitForNone()
    {
        var spin = default(SpinWait);
        for (int slot = Stride; slot <= _processors * Stride; slot += Stride)
        {
            while (Volatile.Read(ref _counters[slot]) != 0)
            {
                spin.SpinOnce();
            }
        }
    }
}
