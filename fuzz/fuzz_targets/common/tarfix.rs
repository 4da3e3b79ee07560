//! Shared by the tar targets: header checksums fixed up, so that mutations of a header
//! reach the code behind the checksum check instead of all failing it.

use berth_archive::header::{self, BLOCK};

/// `data` with the checksum of every header block rewritten, walking headers as a reader
/// does: a header, then its data (`size` from the header, rounded up to a block), until a
/// zero block or the end. PAX sizes are not followed, so a header after a PAX-resized
/// entry may be missed; the fuzzer copes.
pub fn fix_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut off = 0usize;
    while off + BLOCK <= out.len() {
        let block = &mut out[off..off + BLOCK];
        if header::is_zero_block(block) {
            break;
        }
        block[148..156].fill(b' ');
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let size = header::parse_number(&block[124..136]).unwrap_or(0);
        let next = size
            .checked_add(BLOCK as u64 - 1)
            .map(|v| v / BLOCK as u64 * BLOCK as u64)
            .and_then(|v| usize::try_from(v).ok())
            .and_then(|v| v.checked_add(off + BLOCK));
        match next {
            Some(n) => off = n,
            None => break,
        }
    }
    out
}
