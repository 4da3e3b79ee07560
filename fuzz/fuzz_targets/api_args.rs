//! The small parsers berth-api applies to client-supplied query values and streams:
//! `time::parse_time_arg` (logs/events `since`/`until`, via `parse_rfc3339` and
//! `parse_go_duration`), `units::parse_ram_bytes` (`--memory`, `--shm-size`),
//! `names::validate_container_name`, `ids::is_id_prefix`, and `stream::read_frame` (the
//! multiplexed stdout/stderr framing).
//!
//! Input: one selector byte, then the value.
//! Checks: nothing panics (no slicing inside a UTF-8 character, no arithmetic overflow, no
//! float-to-Duration conversion out of range); a valid container name is returned without
//! its leading `/`; frames read back are what the bytes say.
#![no_main]

use berth_api::{ids, names, stream, time, units};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => {
            let _ = time::parse_rfc3339(&s);
            let _ = time::parse_go_duration(&s);
            let _ = time::parse_time_arg(&s, 1_700_000_000_000_000_000);
        }
        1 => {
            let _ = units::parse_ram_bytes(&s);
        }
        2 => {
            if let Ok(n) = names::validate_container_name(&s) {
                assert!(!n.starts_with('/') && n.len() >= 2, "{n:?}");
                assert!(s.ends_with(n));
            }
            let _ = ids::is_id_prefix(&s);
            let _ = ids::is_full_id(&s);
        }
        _ => {
            // A frame header claims up to 4 GiB; keep the claim within the fuzzer's
            // memory limit by only reading frames whose claimed length is present (the
            // unbounded allocation itself is a client-side concern, noted in the README).
            let mut r = rest;
            loop {
                if r.len() >= 8 {
                    let len = u32::from_be_bytes([r[4], r[5], r[6], r[7]]) as usize;
                    if len > r.len() - 8 {
                        break;
                    }
                }
                match stream::read_frame(&mut r) {
                    Ok(Some((kind, payload))) => {
                        let again = stream::frame(kind, &payload);
                        assert_eq!(&again[8..], &payload[..]);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
});
