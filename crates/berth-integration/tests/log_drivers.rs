//! Log drivers that send elsewhere (issue 16, point 13): `syslog`, `gelf`, `fluentd` and
//! `journald` deliver exactly the lines a container printed, with Docker's fields, to
//! collectors the test runs on 127.0.0.1 or on unix sockets in a temporary directory;
//! `docker logs` reads the local cache beside them (refused when it is disabled); bad
//! options are refused at create with nothing made; and a collector that is gone, or stops
//! reading, never holds the container up.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use berth_integration::{Daemon, unique};

/// Long enough for anything a working daemon does; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

fn run(d: &Daemon, name: &str, opts: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--name", name, "--network", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.docker(&args).ok();
    d.docker(&["inspect", "-f", "{{.Id}}", name]).ok().trim().to_string()
}

fn logs(d: &Daemon, name: &str) -> (String, String) {
    let r = d.docker(&["logs", name]);
    assert_eq!(r.code, 0, "{r:?}");
    (r.stdout, r.stderr)
}

/// Receives `n` datagrams.
fn datagrams(s: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 65536];
    (0..n)
        .map(|_| {
            let k = s.recv(&mut buf).expect("a datagram from the log driver");
            buf[..k].to_vec()
        })
        .collect()
}

#[test]
fn syslog_rfc5424_over_udp_has_each_line_and_logs_reads_the_cache() {
    let d = Daemon::with_busybox();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp://{}", sock.local_addr().unwrap());
    let name = unique("sysl");
    let opts = [
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address={addr}"),
        "--log-opt",
        "syslog-format=rfc5424",
        "--log-opt",
        "tag={{.Name}}/{{.ImageName}}",
    ];
    run(&d, &name, &opts, "echo one; echo two >&2; echo; echo three");
    let got: Vec<String> = datagrams(&sock, 3).into_iter().map(|b| String::from_utf8(b).unwrap()).collect();
    let tag = format!("{name}/busybox");
    let mut bodies = BTreeMap::new();
    for g in &got {
        // <PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID - MSG\n
        let f: Vec<&str> = g.splitn(8, ' ').collect();
        assert_eq!(f.len(), 8, "{g:?}");
        assert!(f[0].ends_with(">1"), "{g:?}");
        assert!(f[1].ends_with('Z') && f[1].len() == 20, "RFC 3339 seconds: {g:?}");
        assert_eq!((f[3], f[5], f[6]), (tag.as_str(), tag.as_str(), "-"), "{g:?}");
        assert!(f[4].parse::<u32>().is_ok(), "{g:?}");
        bodies.insert(f[7].to_string(), f[0][..f[0].len() - 2].to_string());
    }
    // Daemon facility (3): info is <30>, err is <27>; the empty line is not sent.
    let want: BTreeMap<String, String> = [("one\n", "<30"), ("two\n", "<27"), ("three\n", "<30")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(bodies, want);
    assert_eq!(logs(&d, &name), ("one\n\nthree\n".to_string(), "two\n".to_string()));
    let shown = d
        .docker(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", &name])
        .ok();
    assert!(shown.starts_with("syslog {") && shown.contains(&addr), "{shown}");
}

#[test]
fn syslog_to_a_unix_datagram_socket_in_dockers_default_format() {
    let d = Daemon::with_busybox();
    let dir = tempfile::Builder::new().prefix("btlog").tempdir_in("/tmp").unwrap();
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = unique("sysu");
    let opts = [
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address=unixgram://{}", path.display()),
        "--log-opt",
        "syslog-facility=local3",
    ];
    let id = run(&d, &name, &opts, "echo hello");
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).unwrap();
    let line = String::from_utf8(buf[..n].to_vec()).unwrap();
    // <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, the tag the ID's first 12 characters.
    let (head, msg) = line.split_once("]: ").unwrap();
    assert_eq!(msg, "hello\n");
    assert!(head.starts_with("<158>"), "local3.info: {line:?}");
    assert!(head.contains(&format!(" {}[", &id[..12])), "{line:?}");
}

/// GELF chunks (`0x1e 0x0f`, ID, sequence, count) put back together.
fn gelf_messages(sock: &UdpSocket, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut parts: BTreeMap<Vec<u8>, BTreeMap<u8, Vec<u8>>> = BTreeMap::new();
    while out.len() < n {
        let d = datagrams(sock, 1).remove(0);
        let whole = if d.starts_with(&[0x1e, 0x0f]) {
            let (id, seq, count) = (d[2..10].to_vec(), d[10], d[11]);
            let p = parts.entry(id.clone()).or_default();
            p.insert(seq, d[12..].to_vec());
            if p.len() < count as usize {
                continue;
            }
            parts.remove(&id).unwrap().into_values().flatten().collect()
        } else {
            d
        };
        let mut json = String::new();
        flate2::read::GzDecoder::new(&whole[..]).read_to_string(&mut json).expect("gzip");
        out.push(serde_json::from_str(&json).unwrap());
    }
    out
}

#[test]
fn gelf_over_udp_is_gzipped_json_with_dockers_fields_chunked_when_long() {
    let d = Daemon::with_busybox();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let name = unique("gelf");
    let opts = [
        "--log-driver",
        "gelf",
        "--log-opt",
        &format!("gelf-address=udp://{}", sock.local_addr().unwrap()),
        "--log-opt",
        "labels=team",
        "--label",
        "team=blue",
    ];
    // A long incompressible line takes several chunks.
    let id = run(&d, &name, &opts, "echo short; head -c 6000 /dev/urandom | base64 -w0 >&2; echo >&2");
    let got = gelf_messages(&sock, 2);
    let short = got.iter().find(|m| m["short_message"] == "short").expect("the short line");
    let long = got.iter().find(|m| m["short_message"] != "short").unwrap();
    assert_eq!(long["short_message"].as_str().unwrap().len(), 8000);
    assert_eq!((short["level"].as_u64(), long["level"].as_u64()), (Some(6), Some(3)));
    let image = d.docker(&["inspect", "-f", "{{.Image}}", &name]).ok();
    for (k, v) in [
        ("version", "1.1"),
        ("_container_id", id.as_str()),
        ("_container_name", name.as_str()),
        ("_image_name", "busybox"),
        ("_image_id", image.trim()),
        ("_tag", &id[..12]),
        ("_team", "blue"),
    ] {
        assert_eq!(short[k].as_str(), Some(v), "{k}: {short}");
    }
    assert!(short["_command"].as_str().unwrap().starts_with("sh -c echo short"), "{short}");
    assert!(short["timestamp"].as_f64().unwrap() > 1.7e9 && short["_created"].is_string() && short["host"].is_string());
}

/// MessagePack, as much as Forward entries use.
#[derive(Debug, Clone, PartialEq)]
enum Mp {
    Str(String),
    Int(u64),
    Arr(Vec<Mp>),
    Map(BTreeMap<String, Mp>),
    Ext,
}

impl Mp {
    fn str(&self) -> &str {
        match self {
            Mp::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

/// Decodes one value from the front of `b`; `None` if it is not all there yet.
fn mp(b: &[u8]) -> Option<(Mp, usize)> {
    let be = |s: &[u8]| s.iter().fold(0u64, |a, x| (a << 8) | *x as u64);
    let t = *b.first()?;
    let seq = |n: usize, at: usize, map: bool| -> Option<(Mp, usize)> {
        let mut at = at;
        let mut items = Vec::new();
        for _ in 0..n * if map { 2 } else { 1 } {
            let (v, k) = mp(b.get(at..)?)?;
            items.push(v);
            at += k;
        }
        if map {
            let m = items.chunks(2).map(|p| (p[0].str().to_string(), p[1].clone())).collect();
            Some((Mp::Map(m), at))
        } else {
            Some((Mp::Arr(items), at))
        }
    };
    let string = |n: usize, at: usize| -> Option<(Mp, usize)> {
        let s = b.get(at..at + n)?;
        Some((Mp::Str(String::from_utf8_lossy(s).into_owned()), at + n))
    };
    match t {
        0x00..=0x7f => Some((Mp::Int(t as u64), 1)),
        0x80..=0x8f => seq((t & 0x0f) as usize, 1, true),
        0x90..=0x9f => seq((t & 0x0f) as usize, 1, false),
        0xa0..=0xbf => string((t & 0x1f) as usize, 1),
        0xcc => Some((Mp::Int(be(b.get(1..2)?)), 2)),
        0xcd => Some((Mp::Int(be(b.get(1..3)?)), 3)),
        0xce | 0xd2 => Some((Mp::Int(be(b.get(1..5)?)), 5)),
        0xcf | 0xd3 => Some((Mp::Int(be(b.get(1..9)?)), 9)),
        0xd7 => b.get(9).map(|_| (Mp::Ext, 10)),
        0xd9 => string(*b.get(1)? as usize, 2),
        0xda => string(be(b.get(1..3)?) as usize, 3),
        0xdb => string(be(b.get(1..5)?) as usize, 5),
        0xdc => seq(be(b.get(1..3)?) as usize, 3, false),
        0xde => seq(be(b.get(1..3)?) as usize, 3, true),
        _ => panic!("unexpected msgpack byte {t:#x}"),
    }
}

/// Reads Forward entries from a connection until `n` have come.
fn forward_entries(conn: &mut impl Read, n: usize) -> Vec<(String, BTreeMap<String, Mp>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while out.len() < n {
        while let Some((v, k)) = mp(&buf) {
            buf.drain(..k);
            match v {
                Mp::Arr(a) if a.len() >= 3 => match (&a[0], &a[2]) {
                    (Mp::Str(tag), Mp::Map(rec)) => out.push((tag.clone(), rec.clone())),
                    other => panic!("not an entry: {other:?}"),
                },
                other => panic!("not an entry: {other:?}"),
            }
        }
        if out.len() >= n {
            break;
        }
        let k = conn.read(&mut chunk).expect("reading from the log driver");
        if k == 0 {
            let seen: Vec<String> = out
                .iter()
                .map(|(_, r)| format!("{:?} {}", r.get("source"), r.get("log").map_or(0, |l| l.str().len())))
                .collect();
            panic!("the driver closed the connection after {} entries: {seen:?}", out.len());
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    out
}

#[test]
fn fluentd_gets_forward_entries_with_dockers_record_and_partial_pieces() {
    let d = Daemon::with_busybox();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let name = unique("flu");
    let opts = [
        "--log-driver",
        "fluentd",
        "--log-opt",
        &format!("fluentd-address=127.0.0.1:{port}"),
        "--log-opt",
        "env=REGION",
        "-e",
        "REGION=eu",
    ];
    let reader = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        // one, the 20,000-byte line in two pieces (16 KiB and the rest), two.
        forward_entries(&mut c, 4)
    });
    let id = run(&d, &name, &opts, "echo one; head -c 20000 /dev/zero | tr '\\0' x; echo; echo two >&2");
    let got = reader.join().unwrap();
    for (tag, rec) in &got {
        assert_eq!(tag, &id[..12]);
        assert_eq!(rec["container_id"].str(), id);
        assert_eq!(rec["container_name"].str(), format!("/{name}"));
        assert_eq!(rec["REGION"].str(), "eu");
    }
    let lines: Vec<(&str, &str)> = got.iter().map(|(_, r)| (r["source"].str(), r["log"].str())).collect();
    assert_eq!(lines[0], ("stdout", "one"));
    assert!(lines.contains(&("stderr", "two")), "{lines:?}");
    let pieces: Vec<&BTreeMap<String, Mp>> =
        got.iter().map(|(_, r)| r).filter(|r| r.contains_key("partial_id")).collect();
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[0]["partial_id"], pieces[1]["partial_id"]);
    assert_eq!(
        [
            pieces[0]["partial_ordinal"].str(),
            pieces[0]["partial_last"].str(),
            pieces[1]["partial_ordinal"].str(),
            pieces[1]["partial_last"].str()
        ],
        ["1", "false", "2", "true"]
    );
    assert_eq!(pieces[0]["log"].str().len() + pieces[1]["log"].str().len(), 20000);
    // docker logs reads the whole line back from the cache.
    let (out, err) = logs(&d, &name);
    assert_eq!((out.len(), err.as_str()), ("one\n".len() + 20001, "two\n"));
}

#[test]
fn fluentd_unreachable_fails_the_start_unless_async_and_never_holds_the_container() {
    let d = Daemon::with_busybox();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = unique("fdead");
    let addr = format!("fluentd-address=127.0.0.1:{port}");
    let r = d.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--log-driver",
        "fluentd",
        "--log-opt",
        &addr,
        "busybox",
        "true",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(&format!(
            "failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{}",
        r.stderr
    );
    // With fluentd-async nobody listening changes nothing for the container: 100,000
    // lines are written and all in the cache.
    let name = unique("fasync");
    let opts = ["--log-driver", "fluentd", "--log-opt", &addr, "--log-opt", "fluentd-async=true"];
    run(&d, &name, &opts, "seq 1 100000");
    let (out, _) = logs(&d, &name);
    assert_eq!(out.lines().count(), 100_000);
    assert_eq!(out.lines().last(), Some("100000"));
}

#[test]
fn a_collector_that_stops_reading_does_not_hold_the_container() {
    let d = Daemon::with_busybox();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts, reads the first entry (so the connection is known to carry them), then
    // holds the connection without reading until the container is done.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        let first = forward_entries(&mut c, 1);
        let _ = rx.recv_timeout(PATIENCE * 5);
        first
    });
    let name = unique("fslow");
    let opts = ["--log-driver", "fluentd", "--log-opt", &format!("fluentd-address=127.0.0.1:{port}")];
    // 30 MB, far beyond the socket buffers and the 1 MiB queue.
    run(
        &d,
        &name,
        &opts,
        "echo first; yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 400000; echo done",
    );
    let (out, _) = logs(&d, &name);
    assert_eq!(out.lines().count(), 400_002);
    assert_eq!(out.lines().last(), Some("done"));
    tx.send(()).unwrap();
    let first = holder.join().unwrap();
    assert_eq!(first[0].1["log"].str(), "first");
}

#[test]
fn logs_are_refused_when_the_cache_is_disabled() {
    let d = Daemon::with_busybox();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let name = unique("nocache");
    let opts = [
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address=udp://{}", sock.local_addr().unwrap()),
        "--log-opt",
        "cache-disabled=true",
    ];
    run(&d, &name, &opts, "echo sent");
    let got = String::from_utf8(datagrams(&sock, 1).remove(0)).unwrap();
    assert!(got.ends_with("]: sent\n"), "{got:?}");
    let r = d.docker(&["logs", &name]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("configured logging driver does not support reading"), "{}", r.stderr);
}

#[test]
fn bad_options_are_refused_at_create_and_nothing_is_made() {
    let d = Daemon::with_busybox();
    let cases: &[(&str, &[&str], &str)] = &[
        ("syslog", &["syslog-adress=udp://127.0.0.1"], "unknown log opt 'syslog-adress' for syslog log driver"),
        ("syslog", &["syslog-address=http://127.0.0.1"], "unsupported scheme: 'http'"),
        ("syslog", &["syslog-format=rfc1"], "Invalid syslog format"),
        ("syslog", &["syslog-address=tcp+tls://127.0.0.1:6514"], "tcp+tls is not supported"),
        ("gelf", &[], "gelf-address is a required parameter"),
        (
            "gelf",
            &["gelf-address=tcp://127.0.0.1:12201", "gelf-compression-type=gzip"],
            "compression is only supported on UDP",
        ),
        ("fluentd", &["fluentd-address=ftp://x"], "invalid fluentd-address (ftp://x): unsupported scheme: 'ftp'"),
        ("journald", &["max-size=1m"], "unknown log opt 'max-size' for journald log driver"),
        ("journald", &["cache-disabled=maybe"], "invalid value for option cache-disabled: maybe"),
        ("journald", &["mode=fast"], "logging mode not supported: fast"),
        ("splunk", &[], "logger: no log driver named 'splunk' is registered"),
    ];
    for (driver, opts, want) in cases {
        let name = unique("bad");
        let mut args =
            vec!["create".to_string(), "--name".into(), name.clone(), "--log-driver".into(), driver.to_string()];
        for o in *opts {
            args.extend(["--log-opt".to_string(), o.to_string()]);
        }
        args.extend(["busybox".into(), "true".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = d.docker(&args).fails();
        assert!(err.contains(want), "{driver} {opts:?}: {err}");
        assert_eq!(d.docker(&["ps", "-aq", "--filter", &format!("name={name}")]).ok(), "", "{driver} {opts:?}");
    }
}

/// A journald of its own namespace (`systemd-journald NS`), stopped and its files removed
/// on drop.
struct Journal {
    ns: String,
    child: std::process::Child,
}

impl Journal {
    fn start() -> Option<Journal> {
        let bin = ["/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let ns = unique("btj");
        let child = Command::new(bin)
            .arg(&ns)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let j = Journal { ns, child };
        // It listens once its socket is there.
        for _ in 0..600 {
            if std::path::Path::new(&j.socket()).exists() {
                return Some(j);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("systemd-journald {} did not make its socket", j.ns);
    }

    fn socket(&self) -> String {
        format!("/run/systemd/journal.{}/socket", self.ns)
    }

    /// The entries for a container name, as journalctl reads them back.
    fn entries(&self, name: &str) -> Vec<serde_json::Value> {
        let o = Command::new("journalctl")
            .args(["--namespace", &self.ns, "-o", "json", "--no-pager", &format!("CONTAINER_NAME={name}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.ns));
        if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
            let _ = std::fs::remove_dir_all(format!("/var/log/journal/{}.{}", id.trim(), self.ns));
        }
    }
}

#[test]
fn journald_entries_carry_dockers_fields() {
    let Some(journal) = Journal::start() else {
        eprintln!("systemd-journald is not installed; skipping");
        return;
    };
    let mut d = Daemon::start();
    d.stop();
    d.env.push(("BERTH_JOURNAL_SOCKET".into(), journal.socket()));
    d.spawn();
    d.import_busybox("busybox:latest");
    let name = unique("jrnl");
    let id = run(&d, &name, &["--log-driver", "journald", "--log-opt", "tag=web-{{.Name}}"], "echo out; echo err >&2");
    // The journal writes asynchronously: ask until both are there.
    let mut got = Vec::new();
    for _ in 0..600 {
        got = journal.entries(&name);
        if got.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.len(), 2, "{got:?}");
    let by_msg: BTreeMap<&str, &serde_json::Value> = got.iter().map(|e| (e["MESSAGE"].as_str().unwrap(), e)).collect();
    assert_eq!(by_msg["out"]["PRIORITY"], "6");
    assert_eq!(by_msg["err"]["PRIORITY"], "3");
    let e = by_msg["out"];
    let tag = format!("web-{name}");
    for (k, v) in [
        ("CONTAINER_ID", &id[..12]),
        ("CONTAINER_ID_FULL", id.as_str()),
        ("CONTAINER_NAME", name.as_str()),
        ("CONTAINER_TAG", tag.as_str()),
        ("SYSLOG_IDENTIFIER", tag.as_str()),
        ("IMAGE_NAME", "busybox"),
    ] {
        assert_eq!(e[k].as_str(), Some(v), "{k}: {e}");
    }
    assert_eq!(logs(&d, &name), ("out\n".to_string(), "err\n".to_string()));
}
