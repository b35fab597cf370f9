//! molstream's PDB reader on arbitrary bytes, with the format forced to PDB: once without
//! validation and bond inference (the reader alone, fast), once with the default options
//! (pdbtbx validation behind its panic boundary, CONECT resolution, bond inference).
#![no_main]

use libfuzzer_sys::fuzz_target;
use molstream_engine::io::{Format, LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let fast = LoadOptions { validate_with_pdbtbx: false, infer_bonds: false, ..LoadOptions::default() };
    let _ = load_bytes(data, "fuzz.pdb", Some(Format::Pdb), &fast);
    let full = LoadOptions { max_bytes: 1 << 24, ..LoadOptions::default() };
    if let Err(e) = load_bytes(data, "fuzz.pdb", Some(Format::Pdb), &full) {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
});
