//! A build's progress as BuildKit's `Status` stream shows it: vertexes (started, completed,
//! cached, error) and their logs. berth's builder reports the classic builder's lines; each
//! `Step i/n : …` becomes a vertex named `[i/n] …`, `Using cache` marks it cached, and
//! everything else it prints is the vertex's log, as is what a RUN step's process writes
//! (which comes apart from the builder's lines, and is never parsed). The history is kept,
//! so a `Status` call that comes late still sees the whole build; a vertex's log is capped,
//! as BuildKit's is, so a step printing without end cannot fill the daemon's memory.

use std::sync::Mutex;

use berth_buildkit::proto::{StatusResponse, Timestamp, Vertex, VertexLog, VertexStatus};
use sha2::Digest;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    history: Vec<StatusResponse>,
    done: bool,
}

/// One build's progress, written by the build and read by any number of `Status` calls.
#[derive(Default)]
pub struct Progress {
    state: Mutex<State>,
    changed: Notify,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, r: StatusResponse) {
        self.lock().history.push(r);
        self.changed.notify_waiters();
    }

    /// No more updates.
    pub fn close(&self) {
        self.lock().done = true;
        self.changed.notify_waiters();
    }

    /// Updates from `from` on, and whether the build is over; waits when there are none yet.
    pub async fn next(&self, from: usize) -> (Vec<StatusResponse>, bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.history.len() > from || st.done {
                    return (st.history[from.min(st.history.len())..].to_vec(), st.done);
                }
            }
            notified.await;
        }
    }
}

/// How much of a vertex's log is kept: a backstop above the 2 MiB at which the builder
/// already clips a step's output for BuildKit's clients (its own lines come on top).
const MAX_VERTEX_LOG: usize = 4 << 20;

/// A vertex being reported.
pub struct VertexHandle {
    pub v: Vertex,
    /// Bytes of log sent for it so far.
    logged: usize,
}

/// A vertex digest: unique within the build, stable for its name.
pub fn digest(build: &str, name: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(build.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl Progress {
    /// Starts a vertex.
    pub fn start(&self, build: &str, name: &str) -> VertexHandle {
        let v = Vertex {
            digest: digest(build, name),
            name: name.to_string(),
            started: Some(Timestamp::now()),
            ..Default::default()
        };
        self.push(StatusResponse { vertexes: vec![v.clone()], ..Default::default() });
        VertexHandle { v, logged: 0 }
    }

    /// Logs `msg` under the vertex, up to [`MAX_VERTEX_LOG`] bytes in all; at the limit, one
    /// line says the output was clipped (BuildKit's words) and the rest is dropped.
    pub fn log(&self, v: &mut VertexHandle, stream: i64, msg: &[u8]) {
        if msg.is_empty() || v.logged > MAX_VERTEX_LOG {
            return;
        }
        let room = MAX_VERTEX_LOG - v.logged;
        let kept = &msg[..msg.len().min(room)];
        let mut logs = Vec::new();
        let vertex = &v.v.digest;
        let line = |stream, msg: &[u8]| VertexLog {
            vertex: vertex.clone(),
            timestamp: Some(Timestamp::now()),
            stream,
            msg: msg.to_vec(),
        };
        if !kept.is_empty() {
            logs.push(line(stream, kept));
        }
        let clipped = msg.len() > room;
        if clipped {
            logs.push(line(
                1,
                format!("\n[output clipped, log limit {}MiB reached]\n", MAX_VERTEX_LOG >> 20).as_bytes(),
            ));
        }
        v.logged = if clipped { MAX_VERTEX_LOG + 1 } else { v.logged + kept.len() };
        self.push(StatusResponse { logs, ..Default::default() });
    }

    /// A line of status under a vertex (`naming to …`), shown as done.
    pub fn status(&self, v: &VertexHandle, id: &str) {
        let now = Some(Timestamp::now());
        let s = VertexStatus {
            id: id.to_string(),
            vertex: v.v.digest.clone(),
            timestamp: now,
            started: now,
            completed: now,
            ..Default::default()
        };
        self.push(StatusResponse { statuses: vec![s], ..Default::default() });
    }

    pub fn complete(&self, mut v: VertexHandle, cached: bool, error: Option<String>) {
        v.v.completed = Some(Timestamp::now());
        v.v.cached = cached;
        v.v.error = error.unwrap_or_default();
        self.push(StatusResponse { vertexes: vec![v.v], ..Default::default() });
    }
}

/// Turns the builder's output into vertexes.
pub struct StepReader<'a> {
    pub progress: &'a Progress,
    pub build: String,
    current: Option<VertexHandle>,
    cached: bool,
}

impl<'a> StepReader<'a> {
    pub fn new(progress: &'a Progress, build: &str) -> StepReader<'a> {
        StepReader { progress, build: build.to_string(), current: None, cached: false }
    }

    /// One `Event::Stream` text from the builder.
    pub fn text(&mut self, s: &str) {
        if let Some(rest) = s.strip_prefix("Step ")
            && let Some((counter, instruction)) = rest.split_once(" : ")
            && counter.split_once('/').is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        {
            self.end(None);
            let name = format!("[{counter}] {}", instruction.trim_end());
            self.current = Some(self.progress.start(&self.build, &name));
            return;
        }
        if s.starts_with(" ---> ") || s.starts_with("Successfully ") {
            if s.lines().any(|l| l == " ---> Using cache") {
                self.cached = true;
            }
            return;
        }
        if let Some(v) = &mut self.current {
            self.progress.log(v, 1, s.as_bytes());
        }
    }

    /// What the current step's process wrote.
    pub fn output(&mut self, stderr: bool, data: &[u8]) {
        if let Some(v) = &mut self.current {
            self.progress.log(v, if stderr { 2 } else { 1 }, data);
        }
    }

    /// Completes the current vertex, with `error` if the build failed in it.
    pub fn end(&mut self, error: Option<String>) {
        if let Some(v) = self.current.take() {
            self.progress.complete(v, std::mem::take(&mut self.cached), error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn classic_lines_become_vertexes_with_cache_and_logs() {
        let p = Progress::default();
        let mut r = StepReader::new(&p, "b1");
        for s in [
            "Step 1/3 : FROM busybox\n",
            " ---> 0123456789ab\n",
            "Step 2/3 : RUN echo hi\n",
            " ---> Using cache\n ---> 0123456789ab\n",
            "Step 3/3 : RUN echo there\n",
            " ---> Running in 0123456789ab\n",
        ] {
            r.text(s);
        }
        // A step's output is its log, even when it looks like the builder's lines.
        r.output(false, b"there\n");
        r.output(true, b"oops\n");
        r.output(false, b"Step 9/9 : RUN fake\n");
        for s in [" ---> 0123456789ab\n", "Successfully built 0123456789ab\n"] {
            r.text(s);
        }
        r.end(None);
        p.close();
        let (all, done) = p.next(0).await;
        assert!(done);
        let completed: Vec<(String, bool)> = all
            .iter()
            .flat_map(|r| r.vertexes.iter())
            .filter(|v| v.completed.is_some())
            .map(|v| (v.name.clone(), v.cached))
            .collect();
        assert_eq!(
            completed,
            [
                ("[1/3] FROM busybox".to_string(), false),
                ("[2/3] RUN echo hi".to_string(), true),
                ("[3/3] RUN echo there".to_string(), false)
            ]
        );
        let logs: Vec<(i64, Vec<u8>)> =
            all.iter().flat_map(|r| r.logs.iter()).map(|l| (l.stream, l.msg.clone())).collect();
        assert_eq!(logs, [(1, b"there\n".to_vec()), (2, b"oops\n".to_vec()), (1, b"Step 9/9 : RUN fake\n".to_vec())]);
    }

    #[tokio::test]
    async fn a_vertex_log_is_clipped_at_the_limit() {
        let p = Progress::default();
        let mut r = StepReader::new(&p, "b1");
        r.text("Step 1/1 : RUN yes\n");
        let chunk = vec![b'y'; 64 * 1024];
        for _ in 0..100 {
            r.output(false, &chunk);
        }
        for _ in 0..100 {
            r.output(false, &chunk);
        }
        r.end(None);
        p.close();
        let (all, _) = p.next(0).await;
        let logs: Vec<&[u8]> = all.iter().flat_map(|r| r.logs.iter()).map(|l| l.msg.as_slice()).collect();
        let kept: usize = logs.iter().filter(|m| m.starts_with(b"y")).map(|m| m.len()).sum();
        assert_eq!(kept, MAX_VERTEX_LOG);
        assert_eq!(logs.last().unwrap(), b"\n[output clipped, log limit 4MiB reached]\n");
        assert_eq!(logs.iter().filter(|m| m.starts_with(b"\n[output clipped")).count(), 1);
    }
}
