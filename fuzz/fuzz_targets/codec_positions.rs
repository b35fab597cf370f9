//! Position payloads (`codec::positions`) on arbitrary bytes, against a small held base.
//!
//! The first input byte picks the atom count (1–64, from its low 6 bits) and the precision (its
//! top 2 bits + 1); the rest is the payload. Properties:
//! - `validate_delta` and `apply_delta` never panic;
//! - a payload `validate_delta` accepts always applies (`apply_delta` returns `Ok`);
//! - when the decoded positions are within the quantization range, coding them again against
//!   the base, in each coding, gives a payload that validates and decodes to exactly them.
#![no_main]

use glam::Vec3;
use libfuzzer_sys::fuzz_target;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::positions::{
    Coding, DeltaOptions, Q_LIMIT, Quantized, apply_delta, encode_delta_with, validate_delta,
};

fuzz_target!(|data: &[u8]| {
    let Some((&head, payload)) = data.split_first() else { return };
    let n = usize::from(head & 63) + 1;
    let precision = (head >> 6) + 1;
    let col = |salt: i32| -> Vec<i32> {
        (0..n as i32).map(|i| (i * 7919 + salt * 104_729) % 20_000 - 10_000).collect()
    };
    let base = Quantized { x: col(1), y: col(2), z: col(3) };
    let mut state = base.clone();
    let mut out = vec![Vec3::ZERO; n];
    match validate_delta(payload, n) {
        Ok(()) => {
            if let Err(e) = apply_delta(payload, &mut state, precision, &mut out[..]) {
                panic!("validated payload failed to apply: {e}");
            }
        }
        Err(_) => {
            // The decoder never applies a refused payload; doing so anyway must not panic.
            let _ = apply_delta(payload, &mut base.clone(), precision, &mut out[..]);
            return;
        }
    }
    let in_range = |c: &[i32]| c.iter().all(|v| v.unsigned_abs() < Q_LIMIT as u32);
    if !(in_range(&state.x) && in_range(&state.y) && in_range(&state.z)) {
        return;
    }
    for coding in [Coding::Bits, Coding::Packed, Coding::Entropy] {
        for keyframe in [false, true] {
            let from = if keyframe { Quantized::zeros(n) } else { base.clone() };
            let mut w = Writer::new();
            encode_delta_with(&from, &state, DeltaOptions { coding, keyframe }, &mut w);
            if let Err(e) = validate_delta(&w.buf, n) {
                panic!("{coding:?} payload of decoded positions refused: {e}");
            }
            let mut again = from.clone();
            if let Err(e) = apply_delta(&w.buf, &mut again, precision, &mut out[..]) {
                panic!("{coding:?} payload of decoded positions failed: {e}");
            }
            assert_eq!(again, state, "{coding:?} keyframe={keyframe}: re-coded positions differ");
        }
    }
});
