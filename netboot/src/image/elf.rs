//! Just enough ELF64 (little-endian, as on x86-64) to build an image: a program's
//! interpreter and `DT_NEEDED` libraries, and a kernel module's `.modinfo`.
//!
//! Field offsets are from the System V ABI's ELF-64 object file format.

/// What an ELF file could not tell.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not an ELF64 little-endian file.
    #[error("Not a 64-bit little-endian ELF file")]
    NotElf64,
    /// A header or table points outside the file.
    #[error("Truncated or corrupt ELF file")]
    Truncated,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    b.get(at..at.checked_add(2).ok_or(ElfError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(ElfError::Truncated)
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    b.get(at..at.checked_add(4).ok_or(ElfError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ElfError::Truncated)
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    b.get(at..at.checked_add(8).ok_or(ElfError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(ElfError::Truncated)
}
/// `a + b * c` without overflow.
fn offset(a: usize, b: usize, c: usize) -> Result<usize, ElfError> {
    b.checked_mul(c)
        .and_then(|bc| a.checked_add(bc))
        .ok_or(ElfError::Truncated)
}
fn usize_at(b: &[u8], at: usize) -> Result<usize, ElfError> {
    usize::try_from(u64_at(b, at)?).map_err(|_| ElfError::Truncated)
}
fn cstr_at(b: &[u8], at: usize) -> Result<String, ElfError> {
    let rest = b.get(at..).ok_or(ElfError::Truncated)?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(ElfError::Truncated)?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn check(b: &[u8]) -> Result<(), ElfError> {
    // Magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Err(ElfError::NotElf64);
    }
    Ok(())
}

struct Phdr {
    kind: u32,
    offset: usize,
    vaddr: u64,
    filesz: usize,
}

fn phdrs(b: &[u8]) -> Result<Vec<Phdr>, ElfError> {
    check(b)?;
    let off = usize_at(b, 0x20)?;
    let size = usize::from(u16_at(b, 0x36)?);
    let n = usize::from(u16_at(b, 0x38)?);
    (0..n)
        .map(|i| {
            let p = offset(off, i, size)?;
            Ok(Phdr {
                kind: u32_at(b, p)?,
                offset: usize_at(b, offset(p, 8, 1)?)?,
                vaddr: u64_at(b, offset(p, 16, 1)?)?,
                filesz: usize_at(b, offset(p, 32, 1)?)?,
            })
        })
        .collect()
}

/// The dynamic linking facts of a program or library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// `PT_INTERP`: the dynamic loader's path, for programs.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames, in order.
    pub needed: Vec<String>,
}

/// Reads the interpreter and needed libraries; a static file has neither.
pub fn dynamic(b: &[u8]) -> Result<Dynamic, ElfError> {
    let ph = phdrs(b)?;
    let mut d = Dynamic::default();
    if let Some(p) = ph.iter().find(|p| p.kind == PT_INTERP) {
        d.interpreter = Some(cstr_at(b, p.offset)?);
    }
    let Some(dynp) = ph.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Ok(d);
    };
    let mut needed_offsets = Vec::new();
    let mut strtab_vaddr = None;
    for i in 0..dynp.filesz / 16 {
        let at = offset(dynp.offset, i, 16)?;
        let tag = u64_at(b, at)?;
        let val = u64_at(b, offset(at, 8, 1)?)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(val),
            DT_STRTAB => strtab_vaddr = Some(val),
            _ => {}
        }
    }
    let Some(strtab) = strtab_vaddr else {
        return Ok(d);
    };
    // DT_STRTAB is a virtual address: map it through the PT_LOAD covering it.
    let load = ph
        .iter()
        .find(|p| p.kind == PT_LOAD && p.vaddr <= strtab && strtab - p.vaddr < p.filesz as u64)
        .ok_or(ElfError::Truncated)?;
    let strtab_off = offset(
        load.offset,
        usize::try_from(strtab - load.vaddr).map_err(|_| ElfError::Truncated)?,
        1,
    )?;
    for o in needed_offsets {
        let o = usize::try_from(o).map_err(|_| ElfError::Truncated)?;
        d.needed.push(cstr_at(b, offset(strtab_off, o, 1)?)?);
    }
    Ok(d)
}

/// The `key=value` strings of a kernel module's `.modinfo` section.
pub fn modinfo(b: &[u8]) -> Result<Vec<(String, String)>, ElfError> {
    check(b)?;
    let shoff = usize_at(b, 0x28)?;
    let shsize = usize::from(u16_at(b, 0x3a)?);
    let shnum = usize::from(u16_at(b, 0x3c)?);
    let shstrndx = usize::from(u16_at(b, 0x3e)?);
    let sh = |i: usize| -> Result<(u32, usize, usize), ElfError> {
        let p = offset(shoff, i, shsize)?;
        Ok((
            u32_at(b, p)?,
            usize_at(b, offset(p, 24, 1)?)?,
            usize_at(b, offset(p, 32, 1)?)?,
        ))
    };
    let (_, names_off, _) = sh(shstrndx)?;
    for i in 0..shnum {
        let (name, off, size) = sh(i)?;
        if cstr_at(b, offset(names_off, name as usize, 1)?)? != ".modinfo" {
            continue;
        }
        let data = b
            .get(off..offset(off, size, 1)?)
            .ok_or(ElfError::Truncated)?;
        return Ok(data
            .split(|&c| c == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect());
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn non_elf_is_refused() {
        assert!(matches!(dynamic(b"#!/bin/sh\n"), Err(ElfError::NotElf64)));
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1; // 32-bit
        b[5] = 1;
        assert!(matches!(modinfo(&b), Err(ElfError::NotElf64)));
    }

    #[test]
    fn corrupt_tables_are_errors_not_panics() {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        b[0x36] = 56;
        b[0x38] = 1;
        assert!(matches!(dynamic(&b), Err(ElfError::Truncated)));
    }

    #[test]
    fn this_test_binary_is_read() {
        // The test executable itself is a dynamically linked ELF64 on Linux.
        let b = std::fs::read("/proc/self/exe").unwrap();
        let d = dynamic(&b).unwrap();
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        assert!(d.interpreter.is_some());
    }
}
