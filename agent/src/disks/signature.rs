//! Partition-table and file-system signatures, read from the first and last
//! sectors of a disk.
//!
//! A disk that carries any of these holds somebody's data: it is `in_use` and is
//! never offered to a pool without the owner's approval. The checks only read a few
//! small regions (about 170 KiB per disk), at offsets fixed by each format's
//! on-disk layout (cited beside each check), so they are cheap and never write.

use serde::Serialize;

use crate::hal::ReadError;

/// Head region read in one go: covers the MBR, GPT header at LBA 1 for 512-byte and
/// 4 KiB sectors, the ext superblock (1 KiB), XFS, FAT/NTFS boot sectors, swap
/// headers for 4/8/16 KiB pages, LVM2 labels, md 1.1/1.2 superblocks, bcache
/// (4 KiB), LUKS and the ISO 9660 descriptor (32 KiB). Everything else is a few
/// bytes at a fixed offset, read on its own: seven reads and about 36 KiB of
/// copying per disk (a syscall costs about as much as copying 16 KiB).
const HEAD_LEN: usize = 36 * 1024;

/// One thing found on a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signature {
    /// GUID partition table (primary or backup header).
    Gpt,
    /// DOS/MBR partition table with at least one used entry.
    Mbr,
    /// ext2/3/4 file system.
    Ext,
    /// XFS file system.
    Xfs,
    /// btrfs file system.
    Btrfs,
    /// FAT12/16/32 file system.
    Vfat,
    /// NTFS file system.
    Ntfs,
    /// Linux swap area.
    Swap,
    /// LVM2 physical volume.
    Lvm2,
    /// ZFS pool member (vdev label).
    Zfs,
    /// bcache backing or cache device.
    Bcache,
    /// LUKS encrypted volume.
    Luks,
    /// ISO 9660 image (a CD/DVD image written to the disk).
    Iso9660,
    /// Linux md RAID member.
    MdRaid,
}

impl Signature {
    /// Short human name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gpt => "GPT partition table",
            Self::Mbr => "MBR partition table",
            Self::Ext => "ext2/3/4 file system",
            Self::Xfs => "XFS file system",
            Self::Btrfs => "btrfs file system",
            Self::Vfat => "FAT file system",
            Self::Ntfs => "NTFS file system",
            Self::Swap => "swap area",
            Self::Lvm2 => "LVM2 physical volume",
            Self::Zfs => "ZFS pool member",
            Self::Bcache => "bcache device",
            Self::Luks => "LUKS volume",
            Self::Iso9660 => "ISO 9660 image",
            Self::MdRaid => "md RAID member",
        }
    }
}

/// bcache superblock magic (bcache `super.h`), at byte 24 of the superblock that
/// starts at sector 8.
const BCACHE_MAGIC: [u8; 16] = [
    0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
];
/// md superblock magic, little-endian u32 (md_p.h `MD_SB_MAGIC`).
const MD_MAGIC: u32 = 0xa92b_4efc;
/// ZFS uberblock magic (`UBERBLOCK_MAGIC`), stored in the pool's native byte order.
const ZFS_UB_MAGIC: u64 = 0x00ba_b10c;

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.get(off..off + magic.len()) == Some(magic)
}

fn le_u16(buf: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(buf.get(off..off + 2)?.try_into().ok()?))
}

fn le_u32(buf: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(off..off + 4)?.try_into().ok()?))
}

/// Signatures visible in the head region (starting at byte 0).
fn scan_head(head: &[u8], lbs: usize, out: &mut Vec<Signature>) {
    // LUKS1 and LUKS2 both start with "LUKS\xba\xbe".
    if at(head, 0, b"LUKS\xba\xbe") {
        out.push(Signature::Luks);
    }
    if at(head, 0, b"XFSB") {
        out.push(Signature::Xfs);
    }
    // ext: s_magic 0xEF53 at byte 56 of the superblock at 1024.
    if le_u16(head, 1024 + 56) == Some(0xEF53) {
        out.push(Signature::Ext);
    }
    // NTFS boot sector: OEM id at byte 3.
    let ntfs = at(head, 3, b"NTFS    ");
    if ntfs {
        out.push(Signature::Ntfs);
    }
    // FAT: the file-system type string of the BPB (FAT12/16 at 0x36, FAT32 at 0x52)
    // plus the boot-sector signature.
    let boot_sig = at(head, 510, &[0x55, 0xAA]);
    let fat = boot_sig
        && (at(head, 0x36, b"FAT1") || at(head, 0x36, b"FAT ") || at(head, 0x52, b"FAT32   "));
    if fat {
        out.push(Signature::Vfat);
    }
    // GPT header "EFI PART" at LBA 1 (sector size as the kernel reports it; try
    // both common sizes so a wrong guess does not hide a table).
    if [lbs, 512, 4096].iter().any(|&o| at(head, o, b"EFI PART")) {
        out.push(Signature::Gpt);
    } else if boot_sig && !fat && !ntfs && mbr_has_partition(head) {
        out.push(Signature::Mbr);
    }
    // Swap: "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10 bytes of the
    // first page; 64 KiB pages are checked in `detect`.
    for page in [4096usize, 8192, 16384] {
        if at(head, page - 10, b"SWAPSPACE2") || at(head, page - 10, b"SWAP-SPACE") {
            out.push(Signature::Swap);
        }
    }
    // ISO 9660: volume descriptor at sector 16 (2 KiB sectors): type byte, "CD001".
    if at(head, 32768 + 1, b"CD001") {
        out.push(Signature::Iso9660);
    }
    // LVM2: "LABELONE" in one of the first four sectors, type "LVM2 001" at +24.
    if (0..4).any(|s| at(head, s * 512, b"LABELONE") && at(head, s * 512 + 24, b"LVM2 001")) {
        out.push(Signature::Lvm2);
    }
    // md 1.1 superblock at 0, 1.2 at 4 KiB.
    if le_u32(head, 0) == Some(MD_MAGIC) || le_u32(head, 4096) == Some(MD_MAGIC) {
        out.push(Signature::MdRaid);
    }
    if at(head, 4096 + 24, &BCACHE_MAGIC) {
        out.push(Signature::Bcache);
    }
}

/// An MBR with at least one plausible entry: boot flag 0x00 or 0x80 and a
/// non-zero type. (A bare 0x55AA is not enough: many boot loaders and file
/// systems end their first sector with it.)
fn mbr_has_partition(head: &[u8]) -> bool {
    (0..4).any(|i| {
        let e = 446 + i * 16;
        match (head.get(e), head.get(e + 4)) {
            (Some(&flag), Some(&ty)) => (flag == 0 || flag == 0x80) && ty != 0,
            _ => false,
        }
    })
}

/// Reads bytes at an offset into a buffer, returning how many were read.
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> Result<usize, ReadError> + 'a;

/// Where [`detect`] could not look, or what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Every region was read; these signatures were found (empty = blank disk).
    Read(Vec<Signature>),
    /// The disk could not be read.
    Unreadable(ReadError),
}

/// Reads the signature regions of a disk of `size` bytes with `read(offset, buf)`
/// and lists what they hold. `lbs` is the logical block size.
pub fn detect(size: u64, lbs: u32, read: &mut ReadAt<'_>) -> Scan {
    let lbs = if lbs.is_power_of_two() && (512..=65536).contains(&lbs) {
        lbs as usize
    } else {
        512
    };
    match scan(size, lbs, read) {
        Ok(mut out) => {
            out.sort();
            out.dedup();
            Scan::Read(out)
        }
        Err(e) => Scan::Unreadable(e),
    }
}

fn scan(size: u64, lbs: usize, read: &mut ReadAt<'_>) -> Result<Vec<Signature>, ReadError> {
    let mut out = Vec::new();
    // A device shorter than its sysfs size (a truncated image, a dying disk) is
    // unreadable, not blank: blank would make it eligible.
    let mut full = |off: u64, buf: &mut [u8]| -> Result<(), ReadError> {
        let n = read(off, buf)?;
        if n < buf.len() {
            return Err(ReadError::NoData(format!("short read at byte {off}")));
        }
        Ok(())
    };
    let mut head = [0u8; HEAD_LEN];
    let head = &mut head[..HEAD_LEN.min(size as usize)];
    full(0, head)?;
    scan_head(head, lbs, &mut out);

    // The bytes at `off`, if the device reaches that far.
    let mut peek = |off: u64, len: usize| -> Result<Option<[u8; 96]>, ReadError> {
        let mut b = [0u8; 96];
        if off + len as u64 > size {
            return Ok(None);
        }
        full(off, &mut b[..len])?;
        Ok(Some(b))
    };
    // One read for the swap header of 64 KiB pages (arm64, ppc64), ending at
    // 64 KiB, and the btrfs superblock magic "_BHRfS_M" at 64 KiB + 0x40.
    if let Some(b) = peek(65536 - 10, 10 + 0x40 + 8)? {
        if at(&b, 0, b"SWAPSPACE2") {
            out.push(Signature::Swap);
        }
        if at(&b, 10 + 0x40, b"_BHRfS_M") {
            out.push(Signature::Btrfs);
        }
    }
    // ZFS: four 256 KiB vdev labels, two at the start and two at the end of the
    // device (size rounded down to 256 KiB); each holds its uberblock array from
    // 128 KiB into the label. Checking the first uberblock of L0 and L3 finds a
    // pool member even if one end was overwritten. The magic is in the pool's
    // native byte order.
    const LABEL: u64 = 256 * 1024;
    let aligned = size / LABEL * LABEL;
    let mut zfs = vec![128 * 1024];
    if aligned >= 2 * LABEL {
        zfs.push(aligned - LABEL + 128 * 1024);
    }
    for off in zfs {
        if let Some(b) = peek(off, 8)? {
            let word = &b[..8];
            if word == ZFS_UB_MAGIC.to_le_bytes() || word == ZFS_UB_MAGIC.to_be_bytes() {
                out.push(Signature::Zfs);
                break;
            }
        }
    }
    let mut magic_at = |off: u64, magic: &[u8]| -> Result<bool, ReadError> {
        Ok(peek(off, magic.len())?.is_some_and(|b| &b[..magic.len()] == magic))
    };
    if size >= 2 * lbs as u64 {
        // Backup GPT header at the last LBA: finds a table whose primary header was
        // wiped (a half-done `wipefs`), which still holds data.
        if magic_at(size - lbs as u64, b"EFI PART")? {
            out.push(Signature::Gpt);
        }
        // md 0.90: at the last 64 KiB-aligned block before the end; 1.0: 8 KiB
        // before the end, 4 KiB-aligned.
        let sb090 = (size & !0xFFFF).saturating_sub(0x10000);
        let sb10 = (size.saturating_sub(8192)) & !0xFFF;
        for o in [sb090, sb10] {
            if o >= HEAD_LEN as u64 && magic_at(o, &MD_MAGIC.to_le_bytes())? {
                out.push(Signature::MdRaid);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(img: &[u8]) -> Vec<Signature> {
        let mut read = |off: u64, buf: &mut [u8]| -> Result<usize, ReadError> {
            let off = off as usize;
            let n = buf.len().min(img.len().saturating_sub(off));
            buf[..n].copy_from_slice(&img[off..off + n]);
            Ok(n)
        };
        match detect(img.len() as u64, 512, &mut read) {
            Scan::Read(v) => v,
            Scan::Unreadable(e) => panic!("{e}"),
        }
    }

    fn blank() -> Vec<u8> {
        vec![0u8; 1024 * 1024]
    }

    #[test]
    fn blank_disk_has_no_signature() {
        assert!(scan(&blank()).is_empty());
    }

    type Writer = Box<dyn Fn(&mut Vec<u8>)>;

    #[test]
    fn each_magic_is_found() {
        let cases: Vec<(Signature, Writer)> = vec![
            (
                Signature::Gpt,
                Box::new(|d| d[512..520].copy_from_slice(b"EFI PART")),
            ),
            (
                Signature::Mbr,
                Box::new(|d| {
                    d[510] = 0x55;
                    d[511] = 0xAA;
                    d[446 + 4] = 0x83;
                }),
            ),
            (
                Signature::Ext,
                Box::new(|d| d[1080..1082].copy_from_slice(&0xEF53u16.to_le_bytes())),
            ),
            (
                Signature::Xfs,
                Box::new(|d| d[0..4].copy_from_slice(b"XFSB")),
            ),
            (
                Signature::Btrfs,
                Box::new(|d| d[0x10040..0x10048].copy_from_slice(b"_BHRfS_M")),
            ),
            (
                Signature::Vfat,
                Box::new(|d| {
                    d[0x52..0x5a].copy_from_slice(b"FAT32   ");
                    d[510] = 0x55;
                    d[511] = 0xAA;
                }),
            ),
            (
                Signature::Ntfs,
                Box::new(|d| d[3..11].copy_from_slice(b"NTFS    ")),
            ),
            (
                Signature::Swap,
                Box::new(|d| d[4086..4096].copy_from_slice(b"SWAPSPACE2")),
            ),
            (
                Signature::Lvm2,
                Box::new(|d| {
                    d[512..520].copy_from_slice(b"LABELONE");
                    d[536..544].copy_from_slice(b"LVM2 001");
                }),
            ),
            (
                Signature::Zfs,
                Box::new(|d| d[131072..131080].copy_from_slice(&ZFS_UB_MAGIC.to_le_bytes())),
            ),
            (
                Signature::Bcache,
                Box::new(|d| d[4120..4136].copy_from_slice(&BCACHE_MAGIC)),
            ),
            (
                Signature::Luks,
                Box::new(|d| d[0..6].copy_from_slice(b"LUKS\xba\xbe")),
            ),
            (
                Signature::Iso9660,
                Box::new(|d| d[32769..32774].copy_from_slice(b"CD001")),
            ),
            (
                Signature::MdRaid,
                Box::new(|d| d[4096..4100].copy_from_slice(&MD_MAGIC.to_le_bytes())),
            ),
        ];
        for (want, write) in cases {
            let mut d = blank();
            write(&mut d);
            assert_eq!(scan(&d), vec![want], "{want:?}");
        }
    }

    #[test]
    fn backup_gpt_and_tail_md_superblocks_are_found() {
        let mut d = blank();
        let n = d.len();
        d[n - 512..n - 504].copy_from_slice(b"EFI PART");
        assert_eq!(scan(&d), vec![Signature::Gpt]);

        let mut d = blank();
        let o = (n & !0xFFFF) - 0x10000;
        d[o..o + 4].copy_from_slice(&MD_MAGIC.to_le_bytes());
        assert_eq!(scan(&d), vec![Signature::MdRaid]);

        let mut d = blank();
        let o = n - 8192;
        d[o..o + 4].copy_from_slice(&MD_MAGIC.to_le_bytes());
        assert_eq!(scan(&d), vec![Signature::MdRaid]);

        let mut d = blank();
        let o = n - 256 * 1024 + 128 * 1024;
        d[o..o + 8].copy_from_slice(&ZFS_UB_MAGIC.to_be_bytes());
        assert_eq!(scan(&d), vec![Signature::Zfs]);
    }

    #[test]
    fn bare_boot_signature_is_not_a_partition_table() {
        let mut d = blank();
        d[510] = 0x55;
        d[511] = 0xAA;
        assert!(scan(&d).is_empty());
    }

    #[test]
    fn tiny_and_unreadable_devices() {
        assert!(scan(&[0u8; 100]).is_empty());
        let mut fail = |_: u64, _: &mut [u8]| -> Result<usize, ReadError> {
            Err(ReadError::NoData("dev/sdz".into()))
        };
        assert!(matches!(
            detect(1 << 30, 512, &mut fail),
            Scan::Unreadable(_)
        ));
    }
}
