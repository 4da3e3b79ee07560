//! Memory as an attack surface: what one client sends must not make the daemon hold memory
//! in proportion to it. Each test resets the daemon's peak resident size
//! (/proc/PID/clear_refs), sends the attack, and reads the peak again (VmHWM).

use std::io::Write;

use berth_integration::Daemon;

fn daemon_pid(d: &Daemon) -> u32 {
    std::fs::read_to_string(d.exec_root().join("berth.pid")).unwrap().trim().parse().unwrap()
}

/// Resets the daemon's peak resident size to its current size.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// A size from the daemon's /proc status (`VmHWM`: the peak since the last reset; `VmRSS`),
/// in MiB.
fn status_mib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    kb >> 10
}

#[test]
fn load_keeps_a_bounded_amount_of_an_archive_in_memory() {
    let d = Daemon::with_busybox();
    // Twelve 16 MiB entries that are not layers (text: not compressed, not a tar).
    let path = d.dir.path().join("junk.tar");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    const SIZE: u64 = 16 << 20;
    let chunk = vec![b'x'; 1 << 20];
    for i in 0..12 {
        f.write_all(&berth_integration::raw_tar_header(format!("junk{i}").as_bytes(), SIZE)).unwrap();
        for _ in 0..SIZE >> 20 {
            f.write_all(&chunk).unwrap();
        }
    }
    f.write_all(&[0u8; 1024]).unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
    let pid = daemon_pid(&d);
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    let err = d.berth(&["load", "-i", &path.display().to_string()]).fails();
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    assert!(err.contains("invalid archive"), "{err}");
    // Control: the archive is 192 MiB; all of it used to be kept.
    assert!(grew < 100, "the daemon's peak grew by {grew} MiB loading 192 MiB of junk");
}

#[test]
fn a_huge_request_body_is_refused_without_being_held() {
    let d = Daemon::with_busybox();
    let pid = daemon_pid(&d);
    // 64 MiB of JSON: one environment variable.
    let mut body = br#"{"Image":"busybox","Env":["A="#.to_vec();
    body.resize(body.len() + (64 << 20), b'x');
    body.extend_from_slice(br#""]}"#);
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    let (status, text) = d.api("POST", "/containers/create", &body);
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("larger than 16 MiB"), "{text}");
    assert!(grew < 48, "the daemon's peak grew by {grew} MiB for a 64 MiB body");
    // Control: a create of ordinary size works.
    let (status, text) = d.api("POST", "/containers/create", br#"{"Image":"busybox","Cmd":["true"],"Env":["A=b"]}"#);
    assert_eq!(status, 201, "{text}");
}

#[test]
fn small_json_values_cannot_multiply_in_the_daemons_memory() {
    let d = Daemon::with_busybox();
    let pid = daemon_pid(&d);
    // Under the body limit, but 7.5 million values: each became a 32-byte (or larger)
    // value in memory before the body was typed, some 300 MB per request.
    let mut body = br#"{"Image":"busybox","Env":["#.to_vec();
    while body.len() < (15 << 20) {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]}");
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    std::thread::scope(|s| {
        let sent: Vec<_> = (0..4).map(|_| s.spawn(|| d.api("POST", "/containers/create", &body))).collect();
        for t in sent {
            let (status, text) = t.join().unwrap();
            assert_eq!(status, 400, "{text}");
            assert!(text.contains("more than"), "{text}");
        }
    });
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    // Four bodies are 60 MiB, held as read and again as one buffer each: about 120 MiB.
    // Typed through values, each used to take some 300 MB more.
    assert!(grew < 200, "the daemon's peak grew by {grew} MiB for four 15 MiB bodies");
    // Control: a create with a long environment of ordinary values works.
    let env: Vec<String> = (0..5000).map(|i| format!("\"V{i}=x\"")).collect();
    let ok = format!(r#"{{"Image":"busybox","Cmd":["true"],"Env":[{}]}}"#, env.join(","));
    let (status, text) = d.api("POST", "/containers/create", ok.as_bytes());
    assert_eq!(status, 201, "{text}");
}

#[test]
fn an_image_reference_filter_cannot_make_the_daemon_backtrack() {
    let d = Daemon::with_busybox();
    let name = "a".repeat(60);
    d.berth(&["tag", "busybox", &name]).ok();
    // 20 stars against 60 letters: C(60, 20) ways to split for a backtracking matcher.
    let pattern = "*a".repeat(20) + "b";
    let filters = format!(r#"{{"reference":["{pattern}"]}}"#);
    let q: String = filters.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, text) = d.api("GET", &format!("/images/json?filters={q}"), b"");
    assert_eq!((status, text.trim()), (200, "[]"));
    // Control: a pattern of the same shape that matches finds the image.
    let filters = format!(r#"{{"reference":["{}"]}}"#, "*a".repeat(20));
    let q: String = filters.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, text) = d.api("GET", &format!("/images/json?filters={q}"), b"");
    assert_eq!(status, 200);
    assert!(text.contains(&name), "{text}");
}
