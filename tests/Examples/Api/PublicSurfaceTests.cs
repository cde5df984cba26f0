// What a C# user of the shipped assemblies sees: public types in namespace Qcow only; the F#
// core and the C# shell stay internal.
using System;
using System.Linq;
using System.Reflection;
using Xunit;

namespace Qcow.Examples.Api;

public sealed class PublicSurfaceTests
{
    [Theory]
    [InlineData("Qcow.Api")]
    [InlineData("Qcow.IO")]
    [InlineData("Qcow.Format")]
    public void ShippedAssemblies_ExposeTypesOnlyInNamespaceQcow(string assembly)
    {
        string[] outside = Assembly.Load(assembly).GetExportedTypes()
            .Where(t => t.Namespace != "Qcow")
            .Select(t => t.FullName!)
            .Order(StringComparer.Ordinal)
            .ToArray();

        Assert.True(outside.Length == 0, $"{assembly} exposes {outside.Length} types outside namespace Qcow: {string.Join(", ", outside.Take(20))}");
    }

    [Fact]
    public void TheApi_ExposesQcowImageAndItsCompanions()
    {
        string[] exported = typeof(QcowImage).Assembly.GetExportedTypes().Select(t => t.Name).ToArray();

        Assert.Contains(nameof(QcowImage), exported);
        Assert.Contains(nameof(QcowOpenOptions), exported);
        Assert.Contains(nameof(QcowCheckResult), exported);
    }
}
