// Fault injection from C#, as QEMU's blkdebug does it: a fault armed by a driver event fails the
// image file's reads and writes with its errno, once or until the image closes; a fault for one
// file offset fails only the requests that cover it; state changes gate which faults arm.
using System;
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class FaultInjectionExamples
{
    private static void Create(TempDir dir)
    {
        using (QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4 << 20 }))
        {
            byte[] data = new byte[64 << 10];
            data.AsSpan().Fill(7);
            image.Write(0, data);
        }
    }

    private static QcowImage Open(TempDir dir, params QcowFault[] faults) =>
        QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { FaultInjection = new QcowFaultInjection { Faults = faults } });

    [Fact]
    public void AReadFault_FailsEveryRead_OrOnlyTheFirstWhenOnce()
    {
        using var dir = new TempDir();
        Create(dir);
        byte[] buffer = new byte[512];

        using (QcowImage image = Open(dir, new QcowFault(QcowDriverEvent.ReadAio)))
        {
            Assert.Equal("Input/output error", Assert.Throws<IOException>(() => image.Read(0, buffer)).Message);
            Assert.Throws<IOException>(() => image.Read(0, buffer));
        }

        using (QcowImage image = Open(dir, new QcowFault(QcowDriverEvent.ReadAio, Errno: 28, Once: true)))
        {
            Assert.Equal("No space left on device", Assert.Throws<IOException>(() => image.Read(0, buffer)).Message);
            image.Read(0, buffer);
        }
    }

    [Fact]
    public void AnL2TableThatFailedToLoad_IsReadAgain_NotTakenForAnEmptyOne()
    {
        using var dir = new TempDir();
        Create(dir);
        using QcowImage image = Open(dir, new QcowFault(QcowDriverEvent.L2Load, Once: true));
        byte[] buffer = new byte[512];

        Assert.Throws<IOException>(() => image.Read(0, buffer));
        image.Read(0, buffer);

        Assert.All(buffer, b => Assert.Equal(7, b));
    }

    [Fact]
    public void AFaultForOneOffset_FailsOnlyTheRequestsCoveringIt()
    {
        using var dir = new TempDir();
        Create(dir);
        using QcowImage probe = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ReadOnly = true });
        long host = probe.Explain(0).Layers[0].HostOffset!.Value;
        probe.Dispose();

        using QcowImage image = Open(dir, new QcowFault(QcowDriverEvent.ReadAio, Offset: host + 4096));
        byte[] buffer = new byte[512];
        image.Read(0, buffer);
        Assert.Throws<IOException>(() => image.Read(4096, buffer));
    }

    [Fact]
    public void AStateChange_GatesTheFaultsOfItsState()
    {
        using var dir = new TempDir();
        Create(dir);
        var injection = new QcowFaultInjection
        {
            Faults = [new QcowFault(QcowDriverEvent.ReadAio, State: 2)],
            StateChanges = [new QcowFaultStateChange(QcowDriverEvent.WriteAio, NewState: 2)],
        };
        using QcowImage image = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { FaultInjection = injection });
        byte[] buffer = new byte[512];
        image.Read(0, buffer);
        image.Write(0, buffer);
        Assert.Throws<IOException>(() => image.Read(0, buffer));
    }
}
