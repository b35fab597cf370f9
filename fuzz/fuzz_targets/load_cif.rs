//! molstream's mmCIF reader on arbitrary bytes, with the format forced to mmCIF: once without
//! validation and bond inference, once with the default options (pdbtbx validation included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use molstream_engine::io::{Format, LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let fast = LoadOptions { validate_with_pdbtbx: false, infer_bonds: false, ..LoadOptions::default() };
    let _ = load_bytes(data, "fuzz.cif", Some(Format::Mmcif), &fast);
    let full = LoadOptions { max_bytes: 1 << 24, ..LoadOptions::default() };
    if let Err(e) = load_bytes(data, "fuzz.cif", Some(Format::Mmcif), &full) {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
});
