//! `sip::parse` on one datagram or WebSocket frame: never panics, and what
//! it rejects as a request it can answer, `error_response` answers without
//! panicking either. What parses serializes and parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match sip::parse(data, &limits) {
        Ok(message) => {
            let bytes = message.to_bytes();
            // What Herald writes it must be able to read back.
            let again = sip::parse(
                &bytes,
                &Limits {
                    max_message_size: usize::MAX,
                    max_head_size: usize::MAX,
                    max_headers: usize::MAX,
                    max_body_size: usize::MAX,
                },
            );
            assert!(
                again.is_ok(),
                "re-parse of our own output failed: {again:?}"
            );
        }
        Err(e) => {
            let _ = sip::error_response(data, &e, &limits);
        }
    }
});
