//! `xcap::selector::parse` (RFC 4825 §6.3 node selectors) and
//! `parse_xmlns_query` (§6.4): never panic, and a selector that parses
//! prints back to text that parses to the same selector.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcap::selector::{self, MAX_SELECTOR_LEN};

fuzz_target!(|data: &[u8]| {
    // Both inputs reach the parser percent-decoded, so as UTF-8 text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One input feeds both: the part after a NUL, if any, is the query.
    let (path, query) = text.split_once('\0').unwrap_or((text, text));
    let _ = selector::parse_xmlns_query(query);

    let Ok(parsed) = selector::parse(path) else {
        return;
    };
    let printed = parsed.to_string();
    // Printing may grow the text (escaped attribute values), past the
    // length limit; below it, it must read back to the same selector.
    if printed.len() <= MAX_SELECTOR_LEN {
        let again = selector::parse(&printed);
        assert_eq!(
            again.as_ref(),
            Ok(&parsed),
            "printed selector does not read back: {path:?} -> {printed:?}"
        );
    }
    if let Some(parent) = parsed.parent() {
        assert_eq!(parent.steps.len() + 1, parsed.steps.len());
        assert!(parent.terminal.is_none());
        assert_eq!(parent.steps[..], parsed.steps[..parent.steps.len()]);
    }
});
