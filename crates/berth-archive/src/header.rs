//! The tar header: USTAR blocks, GNU long names and base-256 numbers, PAX records.

use crate::{ArchiveError, Result};

pub const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Regular,
    HardLink,
    Symlink,
    Char,
    Block,
    Directory,
    Fifo,
}

impl EntryType {
    pub fn flag(self) -> u8 {
        match self {
            EntryType::Regular => b'0',
            EntryType::HardLink => b'1',
            EntryType::Symlink => b'2',
            EntryType::Char => b'3',
            EntryType::Block => b'4',
            EntryType::Directory => b'5',
            EntryType::Fifo => b'6',
        }
    }
}

/// One archive member's metadata, after PAX and GNU extensions have been folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub path: String,
    pub link: String,
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes, from `SCHILY.xattr.*` PAX records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Header {
    pub fn new(path: impl Into<String>, kind: EntryType) -> Header {
        Header {
            path: path.into(),
            link: String::new(),
            kind,
            mode: if kind == EntryType::Directory { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }
}

/// Reads a numeric field: octal ASCII, or GNU base-256 when the high bit is set.
pub fn parse_number(field: &[u8]) -> Result<u64> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first == 0xff {
            return Err(ArchiveError::Corrupt("negative number in header".into()));
        }
        let mut v: u64 = (first & 0x7f) as u64;
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| ArchiveError::Corrupt("number out of range in header".into()))?;
        }
        return Ok(v);
    }
    let s: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let t = String::from_utf8_lossy(&s);
    let t = t.trim_matches(|c: char| c == ' ');
    if t.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(t, 8).map_err(|_| ArchiveError::Corrupt(format!("bad number {t:?} in header")))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// True when the block is all zeros (end-of-archive marker).
pub fn is_zero_block(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Checks the header checksum (computed with the checksum field as spaces). Both the unsigned
/// and the historical signed sums are accepted.
pub fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Ok(stored) = parse_number(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// What a raw header block says, before extensions are applied.
pub struct RawHeader {
    pub typeflag: u8,
    pub name: String,
    pub link: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub uname: String,
    pub gname: String,
    pub dev_major: u32,
    pub dev_minor: u32,
}

pub fn parse_block(block: &[u8; BLOCK]) -> Result<RawHeader> {
    if !checksum_ok(block) {
        return Err(ArchiveError::Corrupt("header checksum mismatch (not a tar archive, or damaged)".into()));
    }
    let magic = &block[257..265];
    let posix = &magic[..6] == b"ustar\0";
    let mut name = cstr(&block[0..100]);
    if posix {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(RawHeader {
        typeflag: block[156],
        name,
        link: cstr(&block[157..257]),
        mode: parse_number(&block[100..108])? as u32,
        uid: parse_number(&block[108..116])?,
        gid: parse_number(&block[116..124])?,
        size: parse_number(&block[124..136])?,
        mtime: parse_number(&block[136..148])? as i64,
        uname: cstr(&block[265..297]),
        gname: cstr(&block[297..329]),
        dev_major: parse_number(&block[329..337])? as u32,
        dev_minor: parse_number(&block[337..345])? as u32,
    })
}

/// Parses PAX extended header records (`"%d %s=%s\n"`).
pub fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| ArchiveError::Corrupt("bad PAX record".into()))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ArchiveError::Corrupt("bad PAX record length".into()))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(ArchiveError::Corrupt("bad PAX record".into()));
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(|| ArchiveError::Corrupt("bad PAX record".into()))?;
        out.push((String::from_utf8_lossy(&rec[..eq]).into_owned(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

fn put_octal(field: &mut [u8], v: u64) -> bool {
    let width = field.len() - 1;
    let s = format!("{v:0width$o}");
    if s.len() > width {
        return false;
    }
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
    true
}

fn put_str(field: &mut [u8], s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > field.len() {
        return false;
    }
    field[..b.len()].copy_from_slice(b);
    true
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // The length prefix counts itself, so find the fixed point.
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// Splits a long path into USTAR prefix and name, if it fits.
fn split_ustar(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate().rev() {
        if b == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            return Some((&path[..i], &path[i + 1..]));
        }
    }
    None
}

fn finish_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(s.as_bytes());
}

/// Encodes a header as one USTAR block, preceded by a PAX extended header when some field
/// does not fit (long names, large ids or sizes, extended attributes, sub-second times are
/// dropped as Docker's layers carry none). The output is deterministic for a given header.
pub fn encode(h: &Header) -> Vec<u8> {
    let mut pax: Vec<u8> = Vec::new();
    let mut block = [0u8; BLOCK];
    let split = split_ustar(&h.path);
    match split {
        Some((prefix, name)) => {
            put_str(&mut block[0..100], name);
            put_str(&mut block[345..500], prefix);
        }
        None => {
            pax.extend(pax_record("path", h.path.as_bytes()));
            put_str(&mut block[0..100], &truncate_utf8(&h.path, 100));
        }
    }
    if !put_str(&mut block[157..257], &h.link) {
        pax.extend(pax_record("linkpath", h.link.as_bytes()));
        put_str(&mut block[157..257], &truncate_utf8(&h.link, 100));
    }
    put_octal(&mut block[100..108], (h.mode & 0o7777) as u64);
    if !put_octal(&mut block[108..116], h.uid) {
        pax.extend(pax_record("uid", h.uid.to_string().as_bytes()));
        put_octal(&mut block[108..116], 0);
    }
    if !put_octal(&mut block[116..124], h.gid) {
        pax.extend(pax_record("gid", h.gid.to_string().as_bytes()));
        put_octal(&mut block[116..124], 0);
    }
    if !put_octal(&mut block[124..136], h.size) {
        pax.extend(pax_record("size", h.size.to_string().as_bytes()));
        put_octal(&mut block[124..136], 0);
    }
    put_octal(&mut block[136..148], h.mtime.max(0) as u64);
    block[156] = h.kind.flag();
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    if !put_str(&mut block[265..297], &h.uname) {
        pax.extend(pax_record("uname", h.uname.as_bytes()));
    }
    if !put_str(&mut block[297..329], &h.gname) {
        pax.extend(pax_record("gname", h.gname.as_bytes()));
    }
    if matches!(h.kind, EntryType::Char | EntryType::Block) {
        put_octal(&mut block[329..337], h.dev_major as u64);
        put_octal(&mut block[337..345], h.dev_minor as u64);
    } else {
        put_octal(&mut block[329..337], 0);
        put_octal(&mut block[337..345], 0);
    }
    for (k, v) in &h.xattrs {
        pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
    }
    finish_checksum(&mut block);
    if pax.is_empty() {
        return block.to_vec();
    }
    let mut xb = [0u8; BLOCK];
    let pax_name = format!("PaxHeaders.0/{}", truncate_utf8(h.path.rsplit('/').next().unwrap_or(""), 80));
    put_str(&mut xb[0..100], &pax_name);
    put_octal(&mut xb[100..108], 0o644);
    put_octal(&mut xb[108..116], 0);
    put_octal(&mut xb[116..124], 0);
    put_octal(&mut xb[124..136], pax.len() as u64);
    put_octal(&mut xb[136..148], h.mtime.max(0) as u64);
    xb[156] = b'x';
    xb[257..263].copy_from_slice(b"ustar\0");
    xb[263..265].copy_from_slice(b"00");
    put_octal(&mut xb[329..337], 0);
    put_octal(&mut xb[337..345], 0);
    finish_checksum(&mut xb);
    let mut out = xb.to_vec();
    out.extend_from_slice(&pax);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out.extend_from_slice(&block);
    out
}

fn truncate_utf8(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Zero bytes needed after `size` bytes of data to reach a block boundary.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_parses_a_plain_header() {
        let mut h = Header::new("etc/passwd", EntryType::Regular);
        h.size = 42;
        h.mtime = 1_700_000_000;
        h.uid = 1000;
        let enc = encode(&h);
        assert_eq!(enc.len(), BLOCK);
        let block: &[u8; BLOCK] = enc[..].try_into().unwrap();
        assert!(checksum_ok(block));
        let raw = parse_block(block).unwrap();
        assert_eq!(raw.name, "etc/passwd");
        assert_eq!(raw.size, 42);
        assert_eq!(raw.uid, 1000);
        assert_eq!(raw.typeflag, b'0');
    }

    #[test]
    fn long_names_use_prefix_or_pax() {
        let mid = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let enc = encode(&Header::new(mid.clone(), EntryType::Regular));
        assert_eq!(enc.len(), BLOCK, "fits USTAR prefix/name");
        let raw = parse_block(enc[..].try_into().unwrap()).unwrap();
        assert_eq!(raw.name, mid);

        let long = "x".repeat(300);
        let enc = encode(&Header::new(long.clone(), EntryType::Regular));
        assert!(enc.len() > BLOCK);
        assert_eq!(enc[156], b'x');
        let size = parse_number(&enc[124..136]).unwrap() as usize;
        let recs = parse_pax(&enc[BLOCK..BLOCK + size]).unwrap();
        assert_eq!(recs[0], ("path".to_string(), long.into_bytes()));
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [0usize, 1, 5, 90, 95, 996, 1000] {
            let r = pax_record("path", &vec![b'a'; n]);
            let parsed = parse_pax(&r).unwrap();
            assert_eq!(parsed[0].1.len(), n);
        }
    }

    #[test]
    fn rejects_bad_checksums_and_numbers() {
        let mut enc = encode(&Header::new("a", EntryType::Regular));
        enc[0] = b'b';
        assert!(parse_block(enc[..].try_into().unwrap()).is_err());
        assert!(parse_number(b"12x\0").is_err());
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]).unwrap(), 256);
    }
}
