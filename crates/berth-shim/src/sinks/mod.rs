//! Remote log drivers: `syslog`, `journald`, `gelf` and `fluentd`.
//!
//! # Contract
//!
//! A remote driver is two halves, each in this module's children:
//!
//! - a **formatter** ([`Format`]) that turns one [`Message`] (a line of the container's
//!   output without its newline, or a piece of a line longer than
//!   [`crate::logfile::MAX_LINE`], with Docker's partial-message metadata) into the frames
//!   the collector expects: RFC 3164/5424 lines, GELF JSON (compressed and chunked for
//!   UDP), msgpack Forward entries, journal native-protocol datagrams. Formatters are pure:
//!   they are unit-tested without sockets.
//! - a **[`Transport`]** that carries frames to the collector over UDP, TCP, a unix stream
//!   or a unix datagram socket.
//!
//! The shim is one thread (the runtime it calls forks without exec), so a transport never
//! blocks: its socket is non-blocking and polled by the shim's loop ([`Sink::interest`],
//! [`Sink::ready`], [`Sink::tick`]). Frames wait in a queue of at most the driver's buffer
//! size (`max-buffer-size` with `mode=non-blocking`, `fluentd-buffer-limit` for fluentd,
//! 1 MiB otherwise); a frame that does not fit is dropped and counted, and the count goes
//! to the shim's log. So a collector that is slow, or gone, never holds up the container
//! and never grows the shim's memory: unlike Docker's default `mode=blocking`, where a
//! stuck collector stops the container at its next write, berth always behaves as
//! Docker's `non-blocking` mode does. A stream connection that breaks is made again after
//! the driver's retry delay; what was queued meanwhile goes then.
//!
//! Options are checked twice with the same code: by the daemon at create ([`check`], with
//! Docker's words for what is wrong) and by the shim when it starts ([`open`]), which is
//! where a collector that cannot be reached fails the start as it does with Docker (a TCP
//! syslog or GELF endpoint, a fluentd without `fluentd-async`, a missing journal).
//!
//! What the daemon knows about the container and the drivers print (`tag` rendered from
//! its template, names, image, `labels`/`env` attributes) comes in [`LogInfo`].

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use rustix::event::PollFlags;
use serde::{Deserialize, Serialize};

pub mod fluentd;
pub mod gelf;
pub mod journald;
pub mod msgpack;
pub mod syslog;
pub mod transport;

pub use transport::Transport;

/// The drivers this module implements.
pub const DRIVERS: &[&str] = &["syslog", "journald", "gelf", "fluentd"];

/// The options every driver takes besides its own (Docker's `logger.Attr*`).
pub const COMMON: &[&str] = &["env", "env-regex", "labels", "labels-regex", "tag"];

/// The buffer a driver queues frames in unless its options say otherwise (Docker's
/// default `max-buffer-size`).
pub const DEFAULT_BUFFER: usize = 1 << 20;

/// What the daemon tells a remote driver about its container (Docker's `logger.Info`,
/// evaluated).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LogInfo {
    /// The full container ID.
    pub id: String,
    /// The name without its leading slash.
    pub name: String,
    /// The full image ID (`sha256:…`).
    pub image_id: String,
    /// The image as the container was created from it (`busybox`, `busybox:1.36`).
    pub image_name: String,
    /// Entrypoint and arguments, joined by spaces.
    pub command: String,
    /// When the container was created (RFC 3339).
    pub created: String,
    /// The `tag` option rendered (default `{{.ID}}`, the ID's first 12 characters).
    pub tag: String,
    /// The host's name.
    pub hostname: String,
    /// Attributes picked by `labels`, `labels-regex`, `env`, `env-regex`, keys as given
    /// (each driver spells them its own way).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

impl LogInfo {
    /// The ID's first 12 characters.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// A remote driver's configuration, as the daemon passes it to the shim.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteLog {
    /// The container's log options (all of them; each driver reads its own).
    pub options: BTreeMap<String, String>,
    pub info: LogInfo,
}

/// Docker's partial-message metadata: a line longer than the shim's buffer goes as
/// several messages sharing an ID, numbered from 1, the last one marked.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub id: String,
    pub ordinal: u32,
    pub last: bool,
}

/// One message: a line without its newline (or a piece of one).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// 1 for stdout, 2 for stderr.
    pub stream: u8,
    pub line: &'a [u8],
    /// Nanoseconds since the epoch.
    pub time: i128,
    pub partial: Option<Partial>,
}

impl Message<'_> {
    pub fn source(&self) -> &'static str {
        if self.stream == 2 { "stderr" } else { "stdout" }
    }

    /// The syslog severity Docker gives it: info for stdout, err for stderr.
    pub fn severity(&self) -> u8 {
        if self.stream == 2 { 3 } else { 6 }
    }
}

/// Turns messages into frames for the collector. `frames` appends zero or more frames
/// (GELF over UDP may need several datagrams for one message; syslog and GELF skip empty
/// lines, as Docker's drivers do).
pub trait Format: Send {
    fn frames(&mut self, m: &Message, out: &mut Vec<Vec<u8>>);
}

/// A formatter and its transport: what the log writer feeds and the shim's loop polls.
pub struct Sink {
    driver: &'static str,
    format: Box<dyn Format>,
    transport: Transport,
    /// The drop count last reported to the shim's log.
    reported: u64,
}

impl Sink {
    /// Formats and queues one message; never blocks.
    pub fn send(&mut self, m: &Message) {
        let mut frames = Vec::new();
        self.format.frames(m, &mut frames);
        for f in frames {
            self.transport.push(f);
        }
        self.transport.flush();
        self.report_drops(false);
    }

    /// The descriptor to poll and for what, while the transport has something to do.
    pub fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        self.transport.interest()
    }

    /// The polled descriptor is ready.
    pub fn ready(&mut self, flags: PollFlags) {
        self.transport.ready(flags);
        self.report_drops(false);
    }

    /// Reconnects when a retry is due; returns when the next one is.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        self.transport.tick(now)
    }

    /// Nothing is left to send.
    pub fn drained(&self) -> bool {
        self.transport.drained()
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.transport.dropped()
    }

    /// Writes the drop count to the shim's log when it first grows and then at every
    /// doubling (and, with `last`, whatever it is at the end).
    pub fn report_drops(&mut self, last: bool) {
        let n = self.transport.dropped();
        if n > self.reported && (last || self.reported == 0 || n >= self.reported * 2) {
            eprintln!(
                "berth-shim: {} log driver: {n} messages dropped so far (the collector at {} is unreachable or too slow; buffer {} bytes)",
                self.driver,
                self.transport.endpoint(),
                self.transport.limit()
            );
            self.reported = n;
        }
    }
}

/// Checks a remote driver's options as the daemon does at create (the `mode`,
/// `max-buffer-size` and `cache-*` options are the daemon's and not seen here). Errors are
/// Docker's texts.
pub fn check(driver: &str, opts: &BTreeMap<String, String>) -> Result<(), String> {
    match driver {
        "syslog" => syslog::Config::parse(opts).map(drop),
        "journald" => journald::check(opts),
        "gelf" => gelf::Config::parse(opts).map(drop),
        "fluentd" => fluentd::Config::parse(opts).map(drop),
        _ => Err(format!("logger: no log driver named '{driver}' is registered")),
    }
}

/// Whether `key` is one of the options every driver takes.
pub fn is_common(key: &str) -> bool {
    COMMON.contains(&key)
}

/// Whether `key` is one of the daemon's own options, which every driver takes (`mode`,
/// `max-buffer-size`, the dual-logging cache's `cache-*`).
pub fn is_builtin(key: &str) -> bool {
    matches!(
        key,
        "mode" | "max-buffer-size" | "cache-disabled" | "cache-max-size" | "cache-max-file" | "cache-compress"
    )
}

/// The queue limit from `mode`/`max-buffer-size`.
fn buffer_limit(opts: &BTreeMap<String, String>) -> usize {
    if opts.get("mode").map(String::as_str) == Some("non-blocking")
        && let Some(n) = opts.get("max-buffer-size").and_then(|s| berth_api::units::parse_ram_bytes(s).ok())
        && n > 0
    {
        return n as usize;
    }
    DEFAULT_BUFFER
}

/// Opens a driver: parses its options, connects where Docker's driver does at start, and
/// returns the sink. Errors are what the start fails with.
pub fn open(driver: &str, remote: &RemoteLog) -> Result<Sink, String> {
    let opts = &remote.options;
    let limit = buffer_limit(opts);
    let (driver, format, transport): (&'static str, Box<dyn Format>, Transport) = match driver {
        "syslog" => {
            let c = syslog::Config::parse(opts)?;
            let t = Transport::open(c.endpoint.clone(), limit, transport::Retry::fixed(1000, None))?;
            ("syslog", Box::new(syslog::Formatter::new(&c, &remote.info)), t)
        }
        "journald" => {
            let t = journald::transport(limit)?;
            ("journald", Box::new(journald::Formatter::new(&remote.info)), t)
        }
        "gelf" => {
            let c = gelf::Config::parse(opts)?;
            let retry = transport::Retry::fixed(c.reconnect_delay_ms, Some(c.max_reconnect));
            let t = Transport::open(c.endpoint.clone(), limit, retry)
                .map_err(|e| format!("gelf: cannot connect to GELF endpoint: {} {e}", c.endpoint.host()))?;
            ("gelf", Box::new(gelf::Formatter::new(&c, &remote.info)), t)
        }
        "fluentd" => {
            let c = fluentd::Config::parse(opts)?;
            let retry = transport::Retry::backoff(c.retry_wait_ms, c.max_retries);
            let t = if c.async_connect {
                Transport::lazy(c.endpoint.clone(), c.buffer_limit, retry)?
            } else {
                Transport::open(c.endpoint.clone(), c.buffer_limit, retry)?
            };
            ("fluentd", Box::new(fluentd::Formatter::new(&c, &remote.info)), t)
        }
        _ => return Err(format!("logger: no log driver named '{driver}' is registered")),
    };
    Ok(Sink { driver, format, transport, reported: 0 })
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.Atoi` for what the drivers read.
pub fn parse_int(s: &str) -> Result<i64, String> {
    s.parse().map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// The host's name (Docker's `os.Hostname`).
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}
