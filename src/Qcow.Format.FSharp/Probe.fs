/// What a file is, from its first bytes, as qemu-img's format probe decides it: the qcow magic,
/// and the magics of the other formats QEMU reads. A file in one of those is refused by name; it
/// is never taken for raw, because writing to it as raw would overwrite its header.
module internal Qcow.Format.Probe

open System
open System.Text

/// The formats a probe tells apart.
type ProbedFormat =
    | Raw
    /// qcow version 1.
    | Qcow
    /// The qcow magic with any other version: the qcow2 decoder names an unsupported one.
    | Qcow2
    /// A format QEMU reads and Qcow does not, by qemu-img's name for it.
    | Foreign of name: string

/// How many leading bytes the probe looks at (VDI's signature sits at 0x40).
[<Literal>]
let HeadLength = 512

/// (format, offset, magic) for every format QEMU probes by its bytes, taken from each driver's
/// probe function: block/vmdk.c, vdi.c, vpc.c, vhdx.c, qed.h, crypto/block-luks.c, parallels.c,
/// bochs.c and cloop.c.
let private foreignMagics: (string * int * byte[]) list =
    let ascii (text: string) = Encoding.Latin1.GetBytes text
    [ "vmdk", 0, ascii "KDMV"
      "vmdk", 0, ascii "COWD"
      "vmdk", 0, ascii "# Disk DescriptorFile"
      "vdi", 0x40, [| 0x7Fuy; 0x10uy; 0xDAuy; 0xBEuy |]
      "vpc", 0, ascii "conectix"
      "vhdx", 0, ascii "vhdxfile"
      "qed", 0, ascii "QED\000"
      "luks", 0, ascii "LUKS\xBA\xBE"
      "parallels", 0, ascii "WithoutFreeSpace"
      "parallels", 0, ascii "WithouFreSpacExt"
      "bochs", 0, ascii "Bochs Virtual HD Image"
      "cloop", 0, ascii "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n" ]

let private holds (head: byte[]) (offset: int) (magic: byte[]) =
    head.Length >= offset + magic.Length && ReadOnlySpan(head, offset, magic.Length).SequenceEqual(ReadOnlySpan magic)

/// The format of a file whose first bytes (up to `HeadLength`, fewer if the file is shorter) are `head`.
let format (head: byte[]) : ProbedFormat =
    let u32 at = BigEndian.u32 (ReadOnlySpan head) at
    if head.Length >= 4 && u32 0 = Limits.Magic then
        if head.Length >= 8 && u32 4 = 1u then Qcow else Qcow2
    else
        match foreignMagics |> List.tryFind (fun (_, offset, magic) -> holds head offset magic) with
        | Some(name, _, _) -> Foreign name
        | None -> Raw
