//! `sip::frame_stream` on a TCP/TLS byte stream: cutting the input into
//! frames the way the edge does never panics, always makes progress, and
//! never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{Frame, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut buf = data;
    loop {
        match sip::frame_stream(buf, &limits) {
            Ok(Frame::Incomplete) | Err(_) => break,
            Ok(Frame::Ping(n)) | Ok(Frame::Skip(n)) | Ok(Frame::Message(n)) => {
                assert!(
                    n > 0 && n <= buf.len(),
                    "frame of {n} bytes in {}",
                    buf.len()
                );
                if let Some(message) = buf.get(..n) {
                    let _ = sip::parse(message, &limits);
                }
                buf = &buf[n..];
            }
        }
    }
});
