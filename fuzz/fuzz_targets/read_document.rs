//! Fuzzes `read_document` with arbitrary UTF-8: it must return a document or a `DocError`,
//! never panic, overflow the stack or hang. Run with `cargo +nightly fuzz run read_document`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(doc) = epoxy::discovery::openapi::read_document(text) {
            for f in &doc.functions {
                let _ = epoxy::discovery::openapi::transformation(f);
            }
        }
    }
});
