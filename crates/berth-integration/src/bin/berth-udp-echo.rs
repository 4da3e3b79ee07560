//! A static UDP echo server that tests bind-mount into busybox containers (busybox's `nc`
//! has no UDP mode). Usage: `berth-udp-echo PORT`. Each datagram is printed and sent back.

use std::io::Write;
use std::net::UdpSocket;

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).expect("usage: berth-udp-echo PORT");
    let sock = UdpSocket::bind(("0.0.0.0", port)).expect("binding the port");
    let mut buf = [0u8; 2048];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let mut out = std::io::stdout();
        let _ = out.write_all(&buf[..n]);
        let _ = out.flush();
        let _ = sock.send_to(&buf[..n], from);
    }
}
