//! The few MessagePack encodings fluentd's Forward protocol needs (strings, maps,
//! arrays, unsigned integers, EventTime).

pub fn array(out: &mut Vec<u8>, n: usize) {
    header(out, n, 0x90, 0xdc);
}

pub fn map(out: &mut Vec<u8>, n: usize) {
    header(out, n, 0x80, 0xde);
}

/// A container's length: `fix | n` below 16, else the 16-bit marker (`big16`) or the 32-bit
/// one after it, each followed by the length.
fn header(out: &mut Vec<u8>, n: usize, fix: u8, big16: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(big16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(big16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// A string (raw bytes: a log line need not be UTF-8, and fluentd takes it as it is).
pub fn str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= u8::MAX as usize {
        out.push(0xd9);
        out.push(n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

pub fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u32::MAX as u64 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Fluentd's EventTime: extension type 0, seconds and nanoseconds as two big-endian u32.
pub fn event_time(out: &mut Vec<u8>, secs: u32, nanos: u32) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_spec() {
        let mut v = Vec::new();
        str(&mut v, b"abc");
        assert_eq!(v, [0xa3, b'a', b'b', b'c']);
        v.clear();
        str(&mut v, &[b'x'; 40]);
        assert_eq!(&v[..2], &[0xd9, 40]);
        v.clear();
        str(&mut v, &[b'x'; 300]);
        assert_eq!(&v[..3], &[0xda, 1, 44]);
        v.clear();
        uint(&mut v, 5);
        uint(&mut v, 1_700_000_000);
        assert_eq!(v, [5, 0xce, 0x65, 0x53, 0xf1, 0x00]);
        v.clear();
        map(&mut v, 3);
        array(&mut v, 3);
        event_time(&mut v, 1, 2);
        assert_eq!(v, [0x83, 0x93, 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        v.clear();
        map(&mut v, 16);
        array(&mut v, 16);
        map(&mut v, 70_000);
        array(&mut v, 70_000);
        assert_eq!(v, [0xde, 0, 16, 0xdc, 0, 16, 0xdf, 0, 1, 0x11, 0x70, 0xdd, 0, 1, 0x11, 0x70]);
    }
}
