//! Sizes as the docker CLI prints and parses them.

/// Decimal size with three significant digits, as `docker images` prints it: `4.26MB`, `0B`.
pub fn human_size(bytes: i64) -> String {
    scaled(bytes as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 3)
}

/// Binary size with four significant digits, as `docker stats` prints it: `1.516MiB`.
pub fn bytes_size(bytes: f64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"], 4)
}

fn scaled(mut v: f64, base: f64, units: &[&str], precision: i32) -> String {
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", format_g(v, precision), units[i])
}

/// Go's `%.Ng` for the magnitudes sizes take (below 10^precision): N significant digits,
/// no trailing zeros.
fn format_g(v: f64, precision: i32) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let int_digits = if v >= 1.0 { v.log10().floor() as i32 + 1 } else { 1 };
    let digits = (precision - int_digits).max(0) as usize;
    let s = format!("{v:.digits$}");

    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Parses a memory size such as `512m`, `1g`, `1.5GB`, `4096` (bytes) with binary units,
/// as `--memory` and `--shm-size` accept them.
pub fn parse_ram_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let value: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'")),
    };
    let bytes = value * mult;
    // A number too large for the type is refused, not cut down to its largest value.
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(format!("invalid size: '{s}'"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(123_000_000), "123MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(bytes_size(1536.0 * 1024.0), "1.5MiB");
        assert_eq!(bytes_size(1_589_000.0), "1.515MiB");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_ram_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_ram_bytes("4096"), Ok(4096));
        assert_eq!(parse_ram_bytes("1.5k"), Ok(1536));
        for bad in ["inf", "1e15", "-1", "9999999999p", "12q", ""] {
            assert!(parse_ram_bytes(bad).is_err(), "{bad}");
        }
        assert!(parse_ram_bytes("lots").is_err());
        assert!(parse_ram_bytes("5q").is_err());
    }
}
