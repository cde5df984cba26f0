/// The LUKS (version 1) header a qcow2 image with LUKS encryption keeps in its crypto header
/// area: the parameters qemu-img info shows. Nothing here decrypts; the key slots stay sealed.
///
/// | offset | size | field            |  | key slot i, at 208 + 48 i        |
/// |      0 |    6 | magic "LUKS\xba\xbe" |  |  0 | 4 | active (0x00AC71F3) |
/// |      8 |   32 | cipher name      |  |  4 | 4 | iterations           |
/// |     40 |   32 | cipher mode      |  | 40 | 4 | key material sector  |
/// |     72 |   32 | hash spec        |  | 44 | 4 | stripes              |
/// |    104 |    4 | payload sector   |
/// |    108 |    4 | key bytes        |
/// |    164 |    4 | master key iterations |
/// |    168 |   40 | UUID             |
namespace Qcow.Format

open System
open System.Text

type internal LuksSlot =
    { Active: bool
      /// PBKDF2 iterations (meaningful when active).
      Iterations: uint32
      /// Where the slot's key material starts, in bytes from the header.
      KeyOffset: int64
      /// Anti-forensic stripes (meaningful when active).
      Stripes: uint32 }

type internal LuksHeader =
    { CipherName: string
      CipherMode: string
      HashSpec: string
      /// Where the encrypted payload starts, in bytes from the header.
      PayloadOffset: int64
      KeyBytes: uint32
      MasterKeyIterations: uint32
      Uuid: string
      Slots: LuksSlot[] }

module internal Luks =
    /// Bytes of the header proper (key slots included).
    [<Literal>]
    let HeaderBytes = 592

    let private slotEnabled = 0x00AC71F3u

    let private magic = [| byte 'L'; byte 'U'; byte 'K'; byte 'S'; 0xbauy; 0xbeuy |]

    /// A NUL-terminated ASCII field.
    let private text (h: byte[]) at length =
        let field = ReadOnlySpan(h, at, length)
        let n = field.IndexOf 0uy
        Encoding.ASCII.GetString(if n < 0 then field else field.Slice(0, n))

    /// The header, or None when the bytes (at least HeaderBytes of them) do not start with LUKS's magic.
    let decode (at: uint64) (h: byte[]) : Result<LuksHeader, FormatError> =
        if h.Length < HeaderBytes || not (ReadOnlySpan(h, 0, 6).SequenceEqual(ReadOnlySpan magic)) then
            Error(Inconsistent(Structure.HeaderExtension, at, "the crypto header is not a LUKS header"))
        else
            let u32 at = BigEndian.u32 (ReadOnlySpan h) at

            let slot i =
                let at = 208 + i * 48

                { Active = u32 at = slotEnabled
                  Iterations = u32 (at + 4)
                  KeyOffset = int64 (u32 (at + 40)) * 512L
                  Stripes = u32 (at + 44) }

            Ok
                { CipherName = text h 8 32
                  CipherMode = text h 40 32
                  HashSpec = text h 72 32
                  PayloadOffset = int64 (u32 104) * 512L
                  KeyBytes = u32 108
                  MasterKeyIterations = u32 164
                  Uuid = text h 168 40
                  Slots = Array.init 8 slot }
