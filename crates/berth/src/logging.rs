//! The daemon's (and the registry server's) log: `tracing` events on stderr, one line each, in
//! dockerd's logrus form:
//!
//! ```text
//! time="2026-12-07T18:30:00.123456789Z" level=error msg="…" status=500 method=POST path=/containers/x/start
//!     container=4f1d… (one line)
//! ```
//!
//! After the event's own fields come those of the spans it happened in, outermost first (a
//! request's `method` and `path`, a container operation's `container`). The level can be
//! changed once the configuration has been read: lines above it are not written. Spans are
//! always kept, whatever the level, so that an error inside a request still names it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The most verbose level written: 0 error, 1 warn, 2 info, 3 debug.
static MAX: AtomicU8 = AtomicU8::new(2);

fn rank(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        _ => 3,
    }
}

/// Installs the logger for this process (at level info). Calling it again changes nothing.
pub fn init() {
    let subscriber = tracing_subscriber::registry().with(Logfmt { sink: to_stderr });
    // Fails only if a logger is installed already, which then stays (see above).
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Writes lines at `level` and above from now on.
pub fn set_level(level: berth_daemon::config::LogLevel) {
    use berth_daemon::config::LogLevel as L;
    let max = match level {
        L::Debug => Level::DEBUG,
        L::Info => Level::INFO,
        L::Warn => Level::WARN,
        L::Error | L::Fatal => Level::ERROR,
    };
    MAX.store(rank(&max), Ordering::Relaxed);
}

struct Logfmt {
    /// Where a finished line goes.
    sink: fn(&str),
}

/// One write per line, so lines from several threads never interleave.
fn to_stderr(line: &str) {
    // A log line that cannot be written has nowhere else to go.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Fields as `key=value` text, and the message apart.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            // Writing into a String cannot fail.
            let _ = write!(self.rest, " {}={}", field.name(), quoted(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// A value as logrus writes it: bare when it is one plain word, else quoted and escaped.
fn quoted(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+'));
    if plain {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn level_word(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Logfmt {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
        m.is_span() || rank(m.level()) <= MAX.load(Ordering::Relaxed)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(f) = ext.get_mut::<Fields>() {
                values.record(f);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let mut line = format!(
            "time=\"{}\" level={} msg={}{}",
            berth_api::time::rfc3339_now(),
            level_word(meta.level()),
            quoted(&f.message),
            f.rest
        );
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(sf) = span.extensions().get::<Fields>() {
                    line.push_str(&sf.rest);
                }
            }
        }
        line.push('\n');
        (self.sink)(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bare_words_or_quoted() {
        assert_eq!(quoted("info"), "info");
        assert_eq!(quoted("/containers/4f1d/start"), "/containers/4f1d/start");
        assert_eq!(quoted("API listening on unix:///run/berth.sock"), "\"API listening on unix:///run/berth.sock\"");
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(quoted(""), "\"\"");
    }

    static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn keep(line: &str) {
        LINES.lock().unwrap().push(line.to_string());
    }

    /// A 5xx inside a request and a container operation: the line names both.
    #[test]
    fn an_error_line_carries_its_fields_and_its_spans() {
        let subscriber = tracing_subscriber::registry().with(Logfmt { sink: keep });
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", method = "POST", path = "/containers/web/start");
            let _r = request.enter();
            let op = tracing::info_span!("start", container = tracing::field::Empty);
            let _o = op.enter();
            op.record("container", "4f1d2c");
            tracing::error!(status = 500u16, "writing config.json: No space left on device");
            tracing::debug!("not written at level info");
        });
        let lines = std::mem::take(&mut *LINES.lock().unwrap());
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        assert!(l.starts_with("time=\""), "{l}");
        assert!(
            l.ends_with(
                " level=error msg=\"writing config.json: No space left on device\" status=500 method=POST \
                 path=/containers/web/start container=4f1d2c\n"
            ),
            "{l}"
        );
    }

    #[test]
    fn dockerds_levels_map_to_a_threshold() {
        set_level(berth_daemon::config::LogLevel::Warn);
        assert_eq!(MAX.load(Ordering::Relaxed), 1);
        set_level(berth_daemon::config::LogLevel::Fatal);
        assert_eq!(MAX.load(Ordering::Relaxed), 0);
        set_level(berth_daemon::config::LogLevel::Info);
        assert_eq!(MAX.load(Ordering::Relaxed), 2);
    }
}
