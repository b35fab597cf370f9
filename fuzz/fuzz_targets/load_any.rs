//! The whole loader without a format hint: gzip detection and decompression (bounded by
//! `max_bytes`), binary/empty sniffing, format detection, then whichever reader applies, with
//! the default options (pdbtbx validation included).
//!
//! The first input byte picks a variant, so the fuzzer also reaches the gzip path with valid
//! streams: bit 0 set → the rest is gzip-compressed before loading.
#![no_main]

use std::io::Write as _;

use libfuzzer_sys::fuzz_target;
use molstream_engine::io::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions { max_bytes: 1 << 24, ..LoadOptions::default() };
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode & 1 == 1 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = enc.write_all(rest);
        enc.finish().unwrap_or_default()
    } else {
        rest.to_vec()
    };
    if let Err(e) = load_bytes(&bytes, "fuzz", None, &options) {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
});
