//! A build's progress as BuildKit's `Status` stream shows it: vertexes (started, completed,
//! cached, error) and their logs. berth's builder reports the classic builder's lines; each
//! `Step i/n : …` becomes a vertex named `[i/n] …`, `Using cache` marks it cached, and
//! everything else it prints is the vertex's log. The history is kept, so a `Status` call
//! that comes late still sees the whole build.

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

/// A vertex being reported.
pub struct VertexHandle {
    pub v: Vertex,
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
        VertexHandle { v }
    }

    pub fn log(&self, v: &VertexHandle, stream: i64, msg: &[u8]) {
        if msg.is_empty() {
            return;
        }
        let l = VertexLog { vertex: v.v.digest.clone(), timestamp: Some(Timestamp::now()), stream, msg: msg.to_vec() };
        self.push(StatusResponse { logs: vec![l], ..Default::default() });
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
        let Some(v) = &self.current else { return };
        // RUN's stderr comes wrapped in red by the classic builder.
        match s.strip_prefix("\x1b[91m").and_then(|t| t.strip_suffix("\x1b[0m")) {
            Some(err) => self.progress.log(v, 2, err.as_bytes()),
            None => self.progress.log(v, 1, s.as_bytes()),
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
            "there\n",
            "\x1b[91moops\n\x1b[0m",
            " ---> 0123456789ab\n",
            "Successfully built 0123456789ab\n",
        ] {
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
        assert_eq!(logs, [(1, b"there\n".to_vec()), (2, b"oops\n".to_vec())]);
    }
}
