//! The stream codec's receiver on arbitrary bytes: a `FrameReader` feeding a `StreamDecoder`
//! that already holds a real keyframe (1hvr, 1890 atoms, stream 1, precision 3, seq 0), so
//! every frame kind (keyframe, positions, attributes, transform, topology delta, and the
//! refused shape kinds) reaches its payload decoder.
//!
//! The first input byte picks a mode:
//! - even: the rest is a raw byte stream, pushed in chunks of `1 + mode / 2` bytes (header
//!   parsing, checksums, lz4, reassembly);
//! - odd: the rest is a list of records `[sel u8][count i8][len u16 LE][payload]`, each sealed
//!   here with a valid checksum as the next frame of the stream (kind `1 + sel % 7`, base = the
//!   frame held unless `sel & 0x40`, lz4 tried if `sel & 0x80`, atom count = atoms held +
//!   `count`), so the payload decoders see the fuzzer's bytes and not just checksum failures.
//!
//! Oracles: no panic, no unbounded allocation; a frame that fails changes nothing (held
//! sequence, complex, positions, atom and bond buffers); a frame that applies leaves a valid
//! topology whose atom and bond counts match the buffers.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use molstream_engine::codec::header::{self, FrameHeader};
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::gpu::StructureBuffers;
use molstream_engine::io::{Format, LoadOptions, load_bytes};

const LIMITS: Limits = Limits {
    max_payload: 1 << 22,
    max_atoms: 1 << 20,
    max_string: 1 << 12,
    max_shapes: 1 << 12,
    max_vertices: 1 << 16,
    max_triangles: 1 << 17,
    max_texture_bytes: 1 << 20,
};

/// The seeded receiver: what applying the first keyframe of 1hvr leaves.
fn seeded() -> &'static (StreamDecoder, StructureBuffers) {
    static SEED: OnceLock<(StreamDecoder, StructureBuffers)> = OnceLock::new();
    SEED.get_or_init(|| {
        let pdb = include_bytes!("../../assets/1hvr.pdb");
        let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
        let complex = load_bytes(pdb, "1hvr.pdb", Some(Format::Pdb), &options).expect("1hvr loads").complex;
        let mut bytes = Vec::new();
        StreamEncoder::new(1, 3).keyframe(&complex, &mut bytes).expect("keyframe encodes");
        let mut reader = FrameReader::new(LIMITS);
        reader.push_bytes(&bytes);
        let frame = reader.try_read().expect("keyframe reads").expect("whole keyframe");
        let mut dec = StreamDecoder::new(LIMITS);
        let mut bufs = StructureBuffers::default();
        dec.apply_buffers(&frame, &mut bufs).expect("keyframe applies");
        (dec, bufs)
    })
}

fn drain(reader: &mut FrameReader, dec: &mut StreamDecoder, bufs: &mut StructureBuffers) {
    // A broken reader repeats its error forever: bound the loop.
    for _ in 0..256 {
        let frame = match reader.try_read() {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
                continue;
            }
        };
        let before = (dec.held_seq(), dec.complex().cloned(), dec.positions(), bufs.clone());
        match dec.apply_buffers(&frame, bufs) {
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
                let after = (dec.held_seq(), dec.complex().cloned(), dec.positions(), bufs.clone());
                assert!(before == after, "a refused frame changed the receiver: {e}");
            }
            Ok(_) => {
                let c = dec.complex().expect("a complex after a frame applied");
                let view = c.current();
                assert!(view.topology.validate().is_ok());
                assert_eq!(bufs.atoms.len(), view.topology.atom_count());
                assert_eq!(bufs.bonds.len(), view.topology.bonds.len());
                assert_eq!(dec.positions().len(), view.topology.atom_count());
                assert_eq!(view.display.len(), view.topology.atom_count());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (seed_dec, seed_bufs) = seeded();
    let mut dec = seed_dec.clone();
    let mut bufs = seed_bufs.clone();
    let mut reader = FrameReader::new(LIMITS);
    if mode & 1 == 0 {
        for chunk in rest.chunks(1 + usize::from(mode / 2)) {
            reader.push_bytes(chunk);
            drain(&mut reader, &mut dec, &mut bufs);
        }
        return;
    }
    let mut r = rest;
    while r.len() >= 4 {
        let sel = r[0];
        let count = i64::from(i8::from_le_bytes([r[1]]));
        let len = usize::from(u16::from_le_bytes([r[2], r[3]])).min(r.len() - 4);
        let payload = &r[4..4 + len];
        r = &r[4 + len..];
        let kind = FrameKind::from_u8(1 + sel % 7).expect("kinds 1-7 exist");
        let held = dec.held_seq().unwrap_or(0);
        let atoms = u32::try_from((bufs.atoms.len() as i64 + count).max(0)).unwrap_or(0);
        let h = FrameHeader {
            kind,
            precision: 3,
            flags: 0,
            stream_id: 1,
            seq: held.wrapping_add(1),
            base_seq: if sel & 0x40 == 0 { held } else { held.wrapping_sub(1) },
            atom_count: atoms,
            payload_len: 0,
            checksum: 0,
        };
        let mut bytes = Vec::new();
        header::seal(h, payload, sel & 0x80 != 0, &mut bytes);
        reader.push_bytes(&bytes);
        drain(&mut reader, &mut dec, &mut bufs);
    }
});
