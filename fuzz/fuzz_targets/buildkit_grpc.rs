//! BuildKit's API as the daemon reads it from a client: the bytes of one HTTP/2 stream,
//! arriving in chunks of any size, cut into gRPC messages (`grpc::take_message`) and
//! decoded as the messages the daemon takes (`SolveRequest`, `StatusRequest`,
//! `DiskUsageRequest`, `PruneRequest`, gateway `SolveRequest`/`ReturnRequest`,
//! `BytesMessage`, fsutil `Packet`, the session's credentials and secret answers).
//!
//! Input: one selector byte (which message type), one byte for the chunk size, then the
//! stream's bytes.
//! Checks: nothing panics; no message is longer than `MAX_MESSAGE` and each takes exactly
//! its prefix and length off the stream; a decoded message encodes and frames into bytes
//! that cut and decode back to the same message.
#![no_main]

use berth_buildkit::grpc::{MAX_MESSAGE, frame, take_message};
use berth_buildkit::proto::*;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn round_trip<M: prost::Message + Default + PartialEq + std::fmt::Debug>(msg: bytes::Bytes) {
    let Ok(m) = M::decode(msg) else { return };
    let mut again = BytesMut::from(&frame(&m)[..]);
    let back = take_message(&mut again).expect("a framed message cuts").expect("whole");
    assert!(again.is_empty(), "bytes left after one framed message");
    assert_eq!(M::decode(back).expect("re-decodes"), m);
}

fuzz_target!(|data: &[u8]| {
    let [which, chunk, rest @ ..] = data else { return };
    let chunk = (*chunk as usize).max(1);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            let msg = match take_message(&mut buf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => return,
            };
            assert!(msg.len() <= MAX_MESSAGE);
            assert_eq!(before - buf.len(), 5 + msg.len(), "a message took more or less than its frame");
            match which % 11 {
                0 => round_trip::<SolveRequest>(msg),
                1 => round_trip::<StatusRequest>(msg),
                2 => round_trip::<DiskUsageRequest>(msg),
                3 => round_trip::<PruneRequest>(msg),
                4 => round_trip::<GatewaySolveRequest>(msg),
                5 => round_trip::<ReturnRequest>(msg),
                6 => round_trip::<BytesMessage>(msg),
                7 => round_trip::<Packet>(msg),
                8 => round_trip::<CredentialsResponse>(msg),
                9 => round_trip::<GetSecretResponse>(msg),
                _ => round_trip::<StatusResponse>(msg),
            }
        }
    }
});
