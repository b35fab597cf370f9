//! The keyframe decoder on arbitrary payloads: `codec::keyframe::decode(payload, atom_count,
//! precision, limits)`. The first 4 input bytes give the atom count the header would claim
//! (bounded by a small `max_atoms`, as a receiver configures it) and the 5th the precision, so
//! the fuzzer explores both consistent and lying headers. A decoded keyframe must hold exactly
//! the claimed atoms and pass topology validation, and re-encoding it must succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::{Limits, keyframe};

fuzz_target!(|data: &[u8]| {
    let Some((head, payload)) = data.split_at_checked(5) else { return };
    let atoms = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) % 200_000;
    let precision = head[4] % 5;
    let limits = Limits { max_payload: 1 << 22, max_atoms: 200_000, max_string: 1 << 12, ..Limits::default() };
    if let Ok((complex, q)) = keyframe::decode(payload, atoms, precision, &limits) {
        assert_eq!(q.len(), atoms as usize);
        assert_eq!(complex.current().positions.len(), atoms as usize);
        assert!(complex.current().topology.validate().is_ok());
        let mut w = Writer::new();
        keyframe::encode(&complex, precision, &mut w).expect("a decoded keyframe re-encodes");
    }
});
