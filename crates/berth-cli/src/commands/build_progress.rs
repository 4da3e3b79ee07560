//! How `build` shows the classic builder's stream on a terminal: one line per step with
//! its outcome (`CACHED`, or `DONE` and its time), RUN output indented under its step,
//! and the builder's bookkeeping lines (`---> 1a2b3c`, intermediate containers) left out.
//! Anywhere else the stream is printed as the daemon sends it, as the docker CLI does.

use std::io::Write;
use std::time::Instant;

#[derive(Default)]
pub struct Compact {
    /// Text received that does not end a line yet.
    partial: String,
    /// The step whose line is still open (nothing printed after it), and when it began.
    open: Option<Instant>,
    /// When the current step began, once its line was closed by output.
    began: Option<Instant>,
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Compact {
    /// Takes the next piece of the stream.
    pub fn feed(&mut self, text: &str, out: &mut impl Write) -> std::io::Result<()> {
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches('\n'), out)?;
        }
        out.flush()
    }

    /// Ends the display (closes a step line left open).
    pub fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, out)?;
        }
        if self.open.take().is_some() {
            writeln!(out)?;
        }
        out.flush()
    }

    fn close_open(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if let Some(t) = self.open.take() {
            writeln!(out)?;
            self.began = Some(t);
        }
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut impl Write) -> std::io::Result<()> {
        // RUN's stderr comes red, its reset at the start of the line after it.
        let line = line.trim_start_matches(RESET);
        if let Some(rest) = line.strip_prefix("Step ") {
            self.close_open(out)?;
            let (count, ins) = rest.split_once(" : ").unwrap_or((rest, ""));
            write!(out, "[{count}] {ins}")?;
            self.open = Some(Instant::now());
            self.began = None;
            return Ok(());
        }
        if let Some(tail) = line.strip_prefix(" ---> ") {
            if tail == "Using cache" {
                if self.open.take().is_some() {
                    writeln!(out, "  {DIM}CACHED{RESET}")?;
                }
            } else if tail.starts_with("Running in ") || tail.starts_with("Removed intermediate container") {
                self.close_open(out)?;
            } else if let Some(t) = self.open.take().or(self.began.take()) {
                // The step's image: the step is done.
                let secs = t.elapsed().as_secs_f64();
                writeln!(out, "  {DIM}DONE {secs:.2}s{RESET}")?;
            }
            return Ok(());
        }
        self.close_open(out)?;
        if line.starts_with("Successfully ") || line.starts_with("[Warning]") || line.starts_with("# ") {
            writeln!(out, "{line}")
        } else {
            writeln!(out, "  {DIM}│{RESET} {line}{RESET}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(stream: &[&str]) -> String {
        let mut c = Compact::default();
        let mut out = Vec::new();
        for s in stream {
            c.feed(s, &mut out).unwrap();
        }
        c.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap().replace(DIM, "").replace(RESET, "").replace("\x1b[91m", "");
        // Times vary: keep only that there is one.
        text.lines()
            .map(|l| match l.find("DONE ") {
                Some(i) => format!("{}DONE t", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn steps_get_one_line_and_run_output_goes_under_them() {
        let text = show(&[
            "Step 1/4 : FROM busybox\n ---> 1a2b3c4d5e6f\n",
            "Step 2/4 : ENV A=1\n ---> Using cache\n ---> 2b3c4d5e6f7a\n",
            "Step 3/4 : RUN echo hi\n ---> Running in 0123456789ab\n",
            "hi\nsecond ",
            "line\n\x1b[91moops\n\x1b[0m ---> Removed intermediate container 0123456789ab\n ---> 3c4d5e6f7a8b\n",
            "Step 4/4 : CMD [\"sh\"]\n ---> 4d5e6f7a8b9c\nSuccessfully built 4d5e6f7a8b9c\nSuccessfully tagged x:latest\n",
        ]);
        assert_eq!(
            text,
            "[1/4] FROM busybox  DONE t\n[2/4] ENV A=1  CACHED\n[3/4] RUN echo hi\n  │ hi\n  │ second line\n  │ oops\n  DONE t\n[4/4] CMD [\"sh\"]  DONE t\nSuccessfully built 4d5e6f7a8b9c\nSuccessfully tagged x:latest"
        );
    }
}
