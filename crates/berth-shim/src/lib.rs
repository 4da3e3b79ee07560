//! The shim: one small supervisor process per container.
//!
//! The shim is what keeps a container independent of the daemon. It owns the container's
//! standard streams (pipes or a terminal), writes its log, reaps it, records how it ended,
//! and serves attach and exec on a unix socket. The daemon can be restarted or killed at any
//! moment: the shim keeps running, and the next daemon reconnects to the socket.
//!
//! This crate is both the `berth-shim` executable (`src/bin`, `src/server`) and the pieces the
//! daemon shares with it: the start configuration ([`proto::ShimConfig`]), the request and
//! frame formats on the socket ([`proto`]), the json-file log format ([`logfile`]), how a log
//! in a directory that is not berth's is opened ([`beneath`]), and the remote log drivers
//! ([`sinks`]).
//!
//! # Protocol
//!
//! A connection starts with one JSON request line ([`proto::Request`]). Then:
//! - `state`, `kill`, `resize`, `close_stdin`: one JSON reply line, and the connection closes.
//! - `wait`: the reply line comes when the container's first process has exited
//!   ([`proto::ExitStatus`]); it is sent at once if it already has.
//! - `attach`: the connection carries frames (`[kind: u8][len: u32 BE][payload]`) both ways:
//!   output from the shim, stdin, stdin-close and resize from the client, and a final
//!   [`proto::FRAME_EXIT`] when the process ends.
//! - `exec`: a reply line (`{"pid": N}` or `{"error": …}`), then frames as for attach, for
//!   the new process.

pub mod beneath;
pub mod init;
pub mod logfile;
pub mod proto;
pub mod server;
pub mod setup;
pub mod sinks;
