//! Timestamps as the Engine API writes them (RFC 3339 with nanoseconds, UTC) and the
//! human forms the docker CLI prints ("Up 5 minutes", "3 hours ago").
//!
//! Kept dependency-free because the per-container shim stamps every log line with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time`, which the Engine API uses for "never" (e.g. FinishedAt of a
/// container that has not exited).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i128 {
    to_nanos(SystemTime::now())
}

pub fn to_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Formats a time as RFC 3339 in UTC with nanoseconds, trailing zeros of the fraction
/// trimmed (Go's `time.RFC3339Nano`), e.g. `2026-11-28T17:56:14.12345Z`.
pub fn rfc3339_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let (y, mo, d, h, mi, s) = civil(secs);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Like [`rfc3339_nanos`] but always with nine fractional digits, which keeps log lines of
/// equal width (Docker's `logs -t` shows them this way).
pub fn rfc3339_nanos_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
}

pub fn rfc3339_now() -> String {
    rfc3339_nanos(now_nanos())
}

/// Splits Unix seconds into a UTC civil date and time.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32)
}

// Days since 1970-01-01 to a proleptic Gregorian date (the well-known era-based algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp (`2026-11-28T17:56:14.5Z`, `...+01:00`), a bare date
/// (`2026-11-28`), or Go's zero time, into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(days as i128 * 86_400 * 1_000_000_000);
    }
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac: i128 = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac = padded.parse().ok()?;
    }
    let offset_secs: i64 = match s.get(i..) {
        Some("Z") | Some("z") | Some("") => 0,
        Some(rest) if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let v = oh * 3600 + om * 60;
            if rest.starts_with('+') { v } else { -v }
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs as i128 * 1_000_000_000 + frac)
}

/// Parses a Go duration such as `1h30m`, `10s`, `250ms`, `1.5h`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Parses the time arguments of `logs --since/--until` and `events --since/--until`:
/// a Unix timestamp (with optional fraction), an RFC 3339 time, or a Go duration meaning
/// "that long before now".
pub fn parse_time_arg(s: &str, now_nanos: i128) -> Option<i128> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    if let Some(d) = parse_go_duration(s)
        && s.chars().any(|c| c.is_ascii_alphabetic())
    {
        return now_nanos.checked_sub(d.as_nanos() as i128);
    }
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i128 = secs.parse().ok()?;
    let mut f = frac.chars().take(9).collect::<String>();
    if !f.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while f.len() < 9 {
        f.push('0');
    }
    secs.checked_mul(1_000_000_000)?.checked_add(f.parse::<i128>().ok()?)
}

/// The docker CLI's human duration ("Less than a second", "About a minute", "3 hours").
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    let minutes = (secs / 60.0) as i64;
    let hours = (secs / 3600.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// How long ago a moment (in nanoseconds) was, in the CLI's words.
pub fn human_since(nanos: i128) -> String {
    let d = (now_nanos() - nanos).max(0);
    human_duration(Duration::from_nanos(d as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = 1_795_888_574_123_456_789i128;
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2026-11-28T17:56:14.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nanos(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn parses_offsets_dates_and_zero_time() {
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-02"), Some(86_400_000_000_000));
        assert!(parse_rfc3339(ZERO_TIME).unwrap() < 0);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn parses_go_durations_and_time_args() {
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("5x"), None);
        let now = 100 * 1_000_000_000;
        assert_eq!(parse_time_arg("10s", now), Some(90 * 1_000_000_000));
        assert_eq!(parse_time_arg("42.5", now), Some(42_500_000_000));
    }

    #[test]
    fn human_durations_read_like_docker() {
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(75)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3600)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(5 * 86_400)), "5 days");
    }

    /// Inputs the fuzzer found (fuzz/regressions/api_args): each panicked.
    #[test]
    fn out_of_range_times_are_refused_not_panics() {
        assert_eq!(parse_time_arg("170141183460469231731687303715884105727", 0), None);
        assert_eq!(parse_go_duration("99999999999999999999h"), None);
        assert_eq!(parse_time_arg("99999999999999999999h", 0), None);
        assert_eq!(parse_rfc3339("2026-11-28T17:56:14+a\u{e9}00"), None);
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
    }
}
