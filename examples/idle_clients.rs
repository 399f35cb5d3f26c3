//! Opens N idle WebSocket connections to a running roomd and holds them, to
//! measure the server's resident memory per idle connection and idle CPU.
//!
//! ```text
//! cargo run --release --example idle_clients -- 127.0.0.1:8080 /chat 10000 60
//! ```
//! (address, route, count, seconds to hold, and optionally the size of one
//! text message each client sends after its handshake). Run it in its own
//! process: each side then needs only N file descriptors.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:8080", String::as_str);
    let path = args.get(1).map_or("/chat", String::as_str);
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let hold: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60);
    let message = args.get(4).and_then(|s| s.parse().ok()).map(text_frame);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let start = Instant::now();
    let mut conns = Vec::with_capacity(count);
    let mut buf = [0u8; 1024];
    for i in 0..count {
        let mut s = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connection {i}: {e}");
                break;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(request.as_bytes()).expect("write request");
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).expect("read answer");
            assert!(n > 0, "closed during handshake {i}");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&got)
        );
        if let Some(frame) = &message {
            s.write_all(frame).expect("write message");
        }
        conns.push(s);
    }
    println!(
        "{} connections open in {:?}; holding {hold} s",
        conns.len(),
        start.elapsed()
    );
    std::thread::sleep(Duration::from_secs(hold));
}

/// A masked text frame of `len` bytes of JSON-ish filler.
fn text_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![0x81];
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xffff {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&[0, 0, 0, 0]); // zero mask: payload as is
    frame.extend(std::iter::repeat_n(b'x', len));
    frame
}
