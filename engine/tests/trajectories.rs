//! Trajectory inputs for the stream codec: DCD through `molstream_engine::traj`, XTC through
//! the `molly` crate (a dev-dependency; it cannot be used from the engine itself).
//!
//! Reference facts (checked below against `../shared/data`):
//! - `traj/adk_dims.dcd`: little-endian, 32-bit markers, CHARMM version 35, no unit cell, no 4D,
//!   3341 atoms, timestep 0.020 454 8 AKMA (1 fs), NSAVC 1000, header NSET 500 but 98 frames in
//!   the file. It is a DIMS closed → open transition of adenylate kinase: frame 0 is *not*
//!   `pdb/adk_open.pdb` (6.96 Å RMSD after superposition), the last frame is 1.85 Å from it.
//! - `traj/adk_oplsaa.xtc` (47 681 atoms, 10 frames, precision 1000/nm): frame 0 × 10 equals
//!   `pdb/adk_oplsaa.pdb` to the XTC grid (RMSD 0.005 Å, max 0.0087 Å).
//! - `traj/cobrotoxin.xtc` (19 385 atoms, 3 frames): `pdb/cobrotoxin.pdb` is not frame 0 (raw RMSD
//!   29 Å) but the *last* frame, translated by (0.944, 3.116, 0.853) Å and wrapped into the PDB's
//!   52.84 Å cubic box (max deviation 0.0089 Å).
//!
//! `cargo test --release -p molstream-engine --test trajectories -- --ignored --nocapture`
//! prints molly's XTC decode speed (the baseline the stream codec must beat).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use glam::Vec3;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::traj::{DcdReader, Endian, TrajError, read_dcd};

// ---------------------------------------------------------------------------------------------
// XTC through molly
// ---------------------------------------------------------------------------------------------

/// Reads XTC bytes into frames of positions in Å (molly decodes nm; × 10).
///
/// Unlike `molly::XTCReader::read_all_frames`, which stops silently at any early end of file, a
/// file that ends inside a frame is an `UnexpectedEof` error here.
pub fn read_xtc_angstrom_bytes(bytes: &[u8]) -> std::io::Result<Vec<Vec<Vec3>>> {
    let mut reader = molly::XTCReader::new(bytes);
    let mut frame = molly::Frame::default();
    let mut frames = Vec::new();
    while !reader.file.is_empty() {
        reader.read_frame(&mut frame)?;
        frames.push(frame.coords().map(|[x, y, z]| Vec3::new(x, y, z) * 10.0).collect());
    }
    Ok(frames)
}

/// Reads an XTC file into frames of positions in Å.
pub fn read_xtc_angstrom(path: &Path) -> std::io::Result<Vec<Vec<Vec3>>> {
    read_xtc_angstrom_bytes(&std::fs::read(path)?)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn pdb_positions(path: &Path) -> Vec<Vec3> {
    let options = LoadOptions { validate_with_pdbtbx: false, infer_bonds: false, ..LoadOptions::default() };
    let loaded = load_file(path, &options).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(loaded.complex.models.len(), 1, "{}", path.display());
    loaded.complex.models[0].positions.clone()
}

/// Root-mean-square deviation without fitting, and the largest single deviation.
fn rmsd_raw(a: &[Vec3], b: &[Vec3]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let mut sum = 0.0;
    let mut max = 0.0f64;
    for (p, q) in a.iter().zip(b) {
        let d = f64::from(p.distance(*q));
        sum += d * d;
        max = max.max(d);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = a.len() as f64;
    ((sum / n).sqrt(), max)
}

/// RMSD after optimal superposition (Horn's quaternion method; Jacobi eigenvalues of the 4×4
/// key matrix).
fn rmsd_fit(a: &[Vec3], b: &[Vec3]) -> f64 {
    assert_eq!(a.len(), b.len());
    #[allow(clippy::cast_precision_loss)]
    let n = a.len() as f64;
    let centre = |v: &[Vec3]| {
        v.iter()
            .fold([0.0f64; 3], |c, p| [c[0] + f64::from(p.x), c[1] + f64::from(p.y), c[2] + f64::from(p.z)])
            .map(|s| s / n)
    };
    let (ca, cb) = (centre(a), centre(b));
    let mut s = [[0.0f64; 3]; 3];
    let mut g = 0.0;
    for (p, q) in a.iter().zip(b) {
        let p = [f64::from(p.x) - ca[0], f64::from(p.y) - ca[1], f64::from(p.z) - ca[2]];
        let q = [f64::from(q.x) - cb[0], f64::from(q.y) - cb[1], f64::from(q.z) - cb[2]];
        for i in 0..3 {
            g += p[i] * p[i] + q[i] * q[i];
            for j in 0..3 {
                s[i][j] += p[i] * q[j];
            }
        }
    }
    let [[xx, xy, xz], [yx, yy, yz], [zx, zy, zz]] = s;
    let mut m = [
        [xx + yy + zz, yz - zy, zx - xz, xy - yx],
        [yz - zy, xx - yy - zz, xy + yx, zx + xz],
        [zx - xz, xy + yx, -xx + yy - zz, yz + zy],
        [xy - yx, zx + xz, yz + zy, -xx - yy + zz],
    ];
    for _ in 0..100 {
        let off: f64 = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| m[i][j] * m[i][j])
            .sum();
        if off < 1e-18 {
            break;
        }
        for p in 0..4 {
            for q in p + 1..4 {
                if m[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * c;
                for row in &mut m {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - sn * kq;
                    row[q] = sn * kp + c * kq;
                }
                let (rp, rq) = (m[p], m[q]);
                for (k, (pk, qk)) in rp.iter().zip(&rq).enumerate() {
                    m[p][k] = c * pk - sn * qk;
                    m[q][k] = sn * pk + c * qk;
                }
            }
        }
    }
    let lambda = (0..4).map(|i| m[i][i]).fold(f64::NEG_INFINITY, f64::max);
    ((g - 2.0 * lambda).max(0.0) / n).sqrt()
}

/// A synthetic DCD layout.
#[derive(Clone, Copy, Debug)]
struct Spec {
    endian: Endian,
    marker64: bool,
    charmm: bool,
    cell: bool,
    four_d: bool,
    fixed: i32,
    nset: i32,
}

impl Spec {
    const PLAIN: Spec =
        Spec { endian: Endian::Little, marker64: false, charmm: true, cell: false, four_d: false, fixed: 0, nset: 0 };
}

/// Writes a DCD file (the test's independent writer).
fn write_dcd(spec: &Spec, frames: &[Vec<Vec3>], cells: &[[f64; 6]], timestep: f32) -> Vec<u8> {
    let e = spec.endian;
    let i32b = |v: i32| if e == Endian::Little { v.to_le_bytes() } else { v.to_be_bytes() };
    let f32b = |v: f32| if e == Endian::Little { v.to_le_bytes() } else { v.to_be_bytes() };
    let f64b = |v: f64| if e == Endian::Little { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut out = Vec::new();
    let record = |out: &mut Vec<u8>, payload: &[u8]| {
        let len = payload.len();
        let marker: Vec<u8> = match (spec.marker64, e) {
            (true, Endian::Little) => (len as u64).to_le_bytes().to_vec(),
            (true, Endian::Big) => (len as u64).to_be_bytes().to_vec(),
            (false, _) => i32b(i32::try_from(len).unwrap()).to_vec(),
        };
        out.extend(&marker);
        out.extend(payload);
        out.extend(&marker);
    };
    let natom = frames.first().map_or(0, Vec::len);
    let mut first = b"CORD".to_vec();
    let mut icntrl = [0i32; 20];
    icntrl[0] = spec.nset;
    icntrl[1] = 1;
    icntrl[2] = 10;
    icntrl[3] = spec.nset * 10;
    icntrl[8] = spec.fixed;
    if spec.charmm {
        icntrl[9] = timestep.to_bits().cast_signed();
        icntrl[10] = i32::from(spec.cell);
        icntrl[11] = i32::from(spec.four_d);
        icntrl[19] = 24;
    }
    for w in icntrl {
        first.extend(i32b(w));
    }
    if !spec.charmm {
        first[4 + 36..4 + 44].copy_from_slice(&f64b(f64::from(timestep)));
    }
    record(&mut out, &first);
    let mut title = i32b(2).to_vec();
    title.extend(format!("{:<80}", "* SYNTHETIC TEST TRAJECTORY").as_bytes());
    title.extend(format!("{:<80}", "* SECOND LINE").as_bytes());
    record(&mut out, &title);
    record(&mut out, &i32b(i32::try_from(natom).unwrap()));
    for (k, frame) in frames.iter().enumerate() {
        if spec.cell {
            let payload: Vec<u8> = cells[k].iter().flat_map(|&v| f64b(v)).collect();
            record(&mut out, &payload);
        }
        for axis in 0..3 {
            let payload: Vec<u8> = frame.iter().flat_map(|p| f32b(p[axis])).collect();
            record(&mut out, &payload);
        }
        if spec.four_d {
            record(&mut out, &vec![0u8; 4 * natom]);
        }
    }
    out
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    #[allow(clippy::cast_precision_loss)]
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn synthetic_frames(atoms: usize, frames: usize, seed: u64) -> (Vec<Vec<Vec3>>, Vec<[f64; 6]>) {
    let mut rng = Rng(seed);
    let f = (0..frames)
        .map(|_| (0..atoms).map(|_| Vec3::new(rng.unit(), rng.unit(), rng.unit()) * 100.0 - 50.0).collect())
        .collect();
    let cells = (0..frames).map(|k| [40.0 + k as f64, 90.0, 41.0, 90.0, 90.0, 42.0]).collect();
    (f, cells)
}

// ---------------------------------------------------------------------------------------------
// DCD: real file
// ---------------------------------------------------------------------------------------------

#[test]
fn dcd_adk_dims() {
    let Some(data) = common::shared_data() else { return };
    let bytes = std::fs::read(data.join("traj/adk_dims.dcd")).unwrap();
    let dcd = read_dcd(&bytes).unwrap();
    let h = &dcd.header;
    eprintln!(
        "adk_dims.dcd: {:?}-endian, {}-byte markers, magic {:?}, CHARMM version {:?}, unit cell {}, 4D {}, \
         timestep {} AKMA = {:.6} ps, NSET {} / ISTART {} / NSAVC {} / NSTEP {}, {} frames in the file, \
         {} atoms, data at {}, {} bytes per frame, title {:?}",
        h.endian,
        h.marker_bytes,
        String::from_utf8_lossy(&h.magic),
        h.charmm_version,
        h.has_unit_cell,
        h.has_4d,
        h.timestep,
        h.timestep_ps(),
        h.nset,
        h.istart,
        h.nsavc,
        h.nstep,
        dcd.frames.len(),
        h.atoms,
        h.data_offset,
        h.frame_bytes,
        h.title
    );
    assert_eq!(dcd.atoms, 3341);
    assert_eq!(dcd.frames.len(), 98);
    assert_eq!((h.endian, h.marker_bytes, h.charmm_version), (Endian::Little, 4, Some(35)));
    assert!(!h.has_unit_cell && !h.has_4d && dcd.unit_cells.is_empty());
    assert_eq!(h.nset, 500, "the header announces 500 frames; the file holds 98");
    assert_eq!((h.istart, h.nsavc), (1000, 1000));
    assert!((h.timestep_ps() - 0.001).abs() < 1e-6, "1 fs: {}", h.timestep_ps());
    assert!((h.frame_interval_ps() - 1.0).abs() < 1e-3);
    assert_eq!(h.title.len(), 3);
    assert!(h.title[0].starts_with("* DIMS ADK SEQUENCE FOR PORE PROGRAM"), "{:?}", h.title);
    assert_eq!(h.data_offset + 98 * h.frame_bytes, bytes.len());

    for (k, f) in dcd.frames.iter().enumerate() {
        assert_eq!(f.len(), 3341);
        assert!(f.iter().all(|p| p.is_finite() && p.abs().max_element() < 1000.0), "frame {k}");
    }
    for (k, pair) in dcd.frames.windows(2).enumerate() {
        let (rms, _) = rmsd_raw(&pair[0], &pair[1]);
        assert!(rms > 0.01, "frames {k} and {} are identical (rms {rms})", k + 1);
    }
    // First atom of frame 0, as written (independently decoded from the bytes).
    let p = dcd.frames[0][0];
    assert!((p - Vec3::new(11.736_044, 8.500_797, -10.445_281)).length() < 1e-4, "{p}");

    // Against the open-state PDB: frame 0 is the closed end of the transition.
    let pdb = pdb_positions(&data.join("pdb/adk_open.pdb"));
    assert_eq!(pdb.len(), 3341);
    let (raw0, _) = rmsd_raw(&dcd.frames[0], &pdb);
    let fit: Vec<f64> = dcd.frames.iter().map(|f| rmsd_fit(f, &pdb)).collect();
    eprintln!(
        "RMSD to adk_open.pdb: frame 0 raw {raw0:.3} Å, superposed {:.3} Å; frame 1 {:.3}; frame 50 {:.3}; frame 97 {:.3}",
        fit[0], fit[1], fit[50], fit[97]
    );
    assert!(raw0 > 20.0, "frame 0 sits in another frame of reference: {raw0}");
    assert!((fit[0] - 6.96).abs() < 0.05, "frame 0 superposed on the open PDB: {}", fit[0]);
    assert!((fit[97] - 1.85).abs() < 0.05, "last frame superposed on the open PDB: {}", fit[97]);
    assert!(fit[97] < fit[50] && fit[50] < fit[0], "the transition runs towards the open state");
    assert!((rmsd_fit(&dcd.frames[0], &dcd.frames[0])).abs() < 1e-3);

    // The frame iterator and random access agree with read_dcd.
    let reader = DcdReader::new(&bytes).unwrap();
    assert_eq!((reader.frames_in_file(), reader.is_truncated()), (98, false));
    assert_eq!(reader.size_hint(), (98, Some(98)));
    assert_eq!(reader.frame(97).unwrap().unwrap().positions, dcd.frames[97]);
    assert!(reader.frame(98).is_none());
    let mut n = 0;
    for (k, frame) in reader.enumerate() {
        let frame = frame.unwrap();
        assert_eq!(frame.positions, dcd.frames[k]);
        assert_eq!(frame.unit_cell, None);
        n += 1;
    }
    assert_eq!(n, 98);

    // Rewritten big-endian with 64-bit markers and a unit cell, it reads back the same.
    let spec = Spec { endian: Endian::Big, marker64: true, cell: true, nset: 98, ..Spec::PLAIN };
    let cells = vec![[80.017, 0.0, 80.017, 0.5, 0.5, 80.017]; 98];
    let big = write_dcd(&spec, &dcd.frames, &cells, dcd.timestep);
    let back = read_dcd(&big).unwrap();
    assert_eq!(back.frames, dcd.frames);
    assert_eq!(back.unit_cells, cells);
    assert_eq!(back.timestep, dcd.timestep);
}

#[test]
fn dcd_adk_dims_truncated_and_corrupted() {
    let Some(data) = common::shared_data() else { return };
    let bytes = std::fs::read(data.join("traj/adk_dims.dcd")).unwrap();
    let h = read_dcd(&bytes).unwrap().header;

    // Truncation anywhere: a typed error, or fewer frames exactly at a frame boundary.
    let mut counts = [0usize; 4];
    for len in (0..bytes.len()).step_by(97) {
        match read_dcd(&bytes[..len]) {
            Ok(d) => {
                assert!(len >= h.data_offset && (len - h.data_offset).is_multiple_of(h.frame_bytes), "len {len}");
                assert_eq!(d.frames.len(), (len - h.data_offset) / h.frame_bytes);
                counts[0] += 1;
            }
            Err(TrajError::Truncated { frame, bytes: b, frame_bytes }) => {
                assert!(len > h.data_offset);
                assert_eq!(frame, (len - h.data_offset) / h.frame_bytes, "len {len}");
                assert_eq!((b, frame_bytes), ((len - h.data_offset) % h.frame_bytes, h.frame_bytes));
                counts[1] += 1;
            }
            Err(TrajError::TruncatedHeader { .. }) => {
                assert!(len < h.data_offset, "len {len}");
                counts[2] += 1;
            }
            Err(TrajError::NotDcd { .. }) => {
                assert!(len < 92, "len {len}");
                counts[3] += 1;
            }
            Err(other) => panic!("len {len}: unexpected {other:?}"),
        }
    }
    eprintln!("truncations: {counts:?} (ok, frame, header, not-dcd)");
    assert!(counts[1] > 40_000 && counts[2] > 0 && counts[3] > 0);

    // The iterator yields the complete frames, then the truncation.
    let cut = &bytes[..h.data_offset + 3 * h.frame_bytes + 1000];
    let items: Vec<_> = DcdReader::new(cut).unwrap().collect();
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(Result::is_ok));
    assert_eq!(items[3], Err(TrajError::Truncated { frame: 3, bytes: 1000, frame_bytes: h.frame_bytes }));

    // Flip every header byte (three ways) of a three-frame prefix: never a panic; markers,
    // magic and NATOM must be caught.
    let prefix = &bytes[..h.data_offset + 3 * h.frame_bytes];
    let mut buf = prefix.to_vec();
    let mut errors = 0;
    for offset in 0..h.data_offset {
        for mask in [0xffu8, 0x80, 0x01] {
            buf[offset] ^= mask;
            let result = read_dcd(&buf);
            buf[offset] ^= mask;
            let must_fail = offset < 8 // first marker, magic
                || (88..92).contains(&offset) // trailing marker of the control record
                || (92..96).contains(&offset) // title marker
                || (h.data_offset - 12..h.data_offset).contains(&offset); // NATOM record
            if must_fail {
                assert!(result.is_err(), "flip {mask:#x} at {offset} went unnoticed");
            }
            if let Ok(d) = &result {
                assert_eq!(d.frames.len(), 3, "flip {mask:#x} at {offset}");
            } else {
                errors += 1;
            }
        }
    }
    eprintln!("header flips: {errors} of {} rejected", 3 * h.data_offset);

    // Wrong markers.
    let mut bad = prefix.to_vec();
    bad[0] = 85;
    assert!(matches!(read_dcd(&bad), Err(TrajError::NotDcd { .. })));
    let mut bad = prefix.to_vec();
    bad[h.data_offset] ^= 1; // the X record's leading marker of frame 0
    assert!(
        matches!(read_dcd(&bad), Err(TrajError::BadRecord { what: "X record", offset, .. }) if offset == h.data_offset),
        "{:?}",
        read_dcd(&bad)
    );
    let mut bad = prefix.to_vec();
    let z_end = h.data_offset + 2 * h.frame_bytes + h.frame_bytes - 4; // trailing marker of frame 2's Z record
    bad[z_end + 1] = 7;
    assert!(matches!(read_dcd(&bad), Err(TrajError::BadRecord { what: "Z record", .. })), "{:?}", read_dcd(&bad));
    let items: Vec<_> = DcdReader::new(&bad).unwrap().collect();
    assert_eq!(items.len(), 3, "two frames, then the error, then nothing");
    assert!(items[2].is_err());
}

// ---------------------------------------------------------------------------------------------
// DCD: synthetic layouts and hostile input
// ---------------------------------------------------------------------------------------------

#[test]
fn dcd_all_layouts_round_trip() {
    let (frames, cells) = synthetic_frames(57, 5, 7);
    let mut n = 0;
    for endian in [Endian::Little, Endian::Big] {
        for marker64 in [false, true] {
            for charmm in [false, true] {
                for cell in [false, true] {
                    for four_d in [false, true] {
                        if !charmm && (cell || four_d) {
                            continue; // X-PLOR files have neither
                        }
                        let spec = Spec { endian, marker64, charmm, cell, four_d, fixed: 0, nset: 1000 };
                        let bytes = write_dcd(&spec, &frames, &cells, 0.5);
                        let d = read_dcd(&bytes).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
                        let h = &d.header;
                        assert_eq!((h.endian, h.marker_bytes), (endian, if marker64 { 8 } else { 4 }), "{spec:?}");
                        assert_eq!((h.charmm_version, h.has_unit_cell, h.has_4d), (charmm.then_some(24), cell, four_d));
                        assert_eq!((d.atoms, d.timestep, h.nset), (57, 0.5, 1000));
                        assert_eq!(h.title, ["* SYNTHETIC TEST TRAJECTORY", "* SECOND LINE"]);
                        assert_eq!(d.frames, frames, "{spec:?}");
                        assert_eq!(d.unit_cells, if cell { cells.clone() } else { Vec::new() });
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 20);

    // Zero atoms and zero frames are valid.
    let empty = write_dcd(&Spec::PLAIN, &[], &[], 1.0);
    assert_eq!(read_dcd(&empty).unwrap().frames.len(), 0);
    let no_atoms = write_dcd(&Spec::PLAIN, &[vec![], vec![]], &[], 1.0);
    assert_eq!(read_dcd(&no_atoms).unwrap().frames, vec![Vec::<Vec3>::new(); 2]);
}

#[test]
fn dcd_fixed_atoms_unsupported() {
    let (frames, cells) = synthetic_frames(10, 2, 3);
    let spec = Spec { fixed: 4, ..Spec::PLAIN };
    let err = read_dcd(&write_dcd(&spec, &frames, &cells, 1.0)).unwrap_err();
    assert!(matches!(err, TrajError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("4 of 10 atoms are fixed"), "{err}");
    let spec = Spec { fixed: -1, ..Spec::PLAIN };
    assert!(matches!(read_dcd(&write_dcd(&spec, &frames, &cells, 1.0)), Err(TrajError::InvalidHeader(_))));
}

#[test]
fn dcd_synthetic_truncation_every_byte() {
    for spec in [
        Spec::PLAIN,
        Spec { endian: Endian::Big, marker64: true, cell: true, four_d: true, ..Spec::PLAIN },
        Spec { charmm: false, ..Spec::PLAIN },
    ] {
        let (frames, cells) = synthetic_frames(11, 3, 5);
        let bytes = write_dcd(&spec, &frames, &cells, 1.0);
        let h = read_dcd(&bytes).unwrap().header;
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let result = read_dcd(cut);
            let at_boundary = len >= h.data_offset && (len - h.data_offset).is_multiple_of(h.frame_bytes);
            assert_eq!(result.is_ok(), at_boundary, "{spec:?} len {len}: {result:?}");
            // The iterator never yields more than the complete frames plus one error.
            if let Ok(reader) = DcdReader::new(cut) {
                let items: Vec<_> = reader.collect();
                assert_eq!(items.iter().filter(|r| r.is_ok()).count(), (len - h.data_offset) / h.frame_bytes);
                assert!(items.iter().filter(|r| r.is_err()).count() <= 1);
            }
        }
    }
}

#[test]
fn dcd_hostile_headers() {
    let (frames, cells) = synthetic_frames(8, 2, 9);
    let good = write_dcd(&Spec::PLAIN, &frames, &cells, 1.0);
    let h = read_dcd(&good).unwrap().header;
    let natom_at = h.data_offset - 8; // NATOM payload
    let title_at = 92; // title marker

    // NATOM = i32::MAX with two small frames' bytes: no allocation, a truncation error.
    let mut bad = good.clone();
    bad[natom_at..natom_at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(read_dcd(&bad), Err(TrajError::Truncated { frame: 0, .. })), "{:?}", read_dcd(&bad));
    // The header alone is fine: zero frames.
    assert_eq!(read_dcd(&bad[..h.data_offset]).unwrap().frames.len(), 0);
    // Negative NATOM.
    bad[natom_at..natom_at + 4].copy_from_slice(&(-5i32).to_le_bytes());
    assert!(matches!(read_dcd(&bad), Err(TrajError::InvalidHeader(_))));

    // NTITLE far larger than the record: only the lines present are read.
    let mut bad = good.clone();
    bad[title_at + 4..title_at + 8].copy_from_slice(&i32::MAX.to_le_bytes());
    assert_eq!(read_dcd(&bad).unwrap().header.title.len(), 2);
    bad[title_at + 4..title_at + 8].copy_from_slice(&(-1i32).to_le_bytes());
    assert!(matches!(read_dcd(&bad), Err(TrajError::InvalidHeader(_))));

    // A title record claiming 4 GiB.
    let mut bad = good.clone();
    bad[title_at..title_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(read_dcd(&bad), Err(TrajError::TruncatedHeader { what: "title record", .. })));
    // 64-bit markers claiming u64::MAX.
    let spec = Spec { marker64: true, ..Spec::PLAIN };
    let mut bad = write_dcd(&spec, &frames, &cells, 1.0);
    bad[100..108].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(read_dcd(&bad), Err(TrajError::TruncatedHeader { .. })), "{:?}", read_dcd(&bad));

    // A wrong magic and a NATOM record of the wrong length.
    let mut bad = good.clone();
    bad[4..8].copy_from_slice(b"XXXX");
    assert!(matches!(read_dcd(&bad), Err(TrajError::NotDcd { .. })));
    let mut bad = good.clone();
    bad[natom_at - 4] = 5;
    assert!(read_dcd(&bad).is_err());

    // Random garbage, garbage after a valid first record, and random single-byte damage.
    let mut rng = Rng(0x1234_5678);
    for round in 0..3000 {
        let len = usize::try_from(rng.next() % 600).unwrap();
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && len > 200 {
            buf[..92.min(len)].copy_from_slice(&good[..92]);
        }
        let _ = read_dcd(&buf);
        if let Ok(reader) = DcdReader::new(&buf) {
            for _ in reader {}
        }
        let mut damaged = good.clone();
        let at = usize::try_from(rng.next()).unwrap() % damaged.len();
        damaged[at] = rng.next() as u8;
        if let Ok(d) = read_dcd(&damaged) {
            assert!(d.frames.len() <= 2);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XTC through molly
// ---------------------------------------------------------------------------------------------

/// Reads an XTC of `atoms` atoms and `frames` frames and its PDB; checks what holds for any
/// trajectory and returns both (positions in Å).
fn load_xtc_case(xtc: &str, pdb: &str, atoms: usize, frames: usize) -> Option<(Vec<Vec<Vec3>>, Vec<Vec3>)> {
    let data = common::shared_data()?;
    let traj = read_xtc_angstrom(&data.join(xtc)).unwrap();
    assert_eq!(traj.len(), frames, "{xtc}");
    assert!(traj.iter().all(|f| f.len() == atoms), "{xtc}");
    assert!(traj.iter().flatten().all(|p| p.is_finite()), "{xtc}");
    for pair in traj.windows(2) {
        assert!(rmsd_raw(&pair[0], &pair[1]).0 > 0.01, "{xtc}: consecutive frames identical");
    }

    // molly's own whole-file reader agrees.
    let mut reader = molly::XTCReader::open(data.join(xtc)).unwrap();
    let all = reader.read_all_frames().unwrap();
    assert_eq!(all.len(), frames);
    assert_eq!(all[0].natoms(), atoms);
    assert_eq!(all[0].precision, 1000.0, "{xtc}: 0.001 nm grid");
    let first: Vec<Vec3> = all[0].coords().map(|[x, y, z]| Vec3::new(x, y, z) * 10.0).collect();
    assert_eq!(first, traj[0]);

    let reference = pdb_positions(&data.join(pdb));
    assert_eq!(reference.len(), atoms, "{pdb}: atom sites");
    let (rms, max) = rmsd_raw(&traj[0], &reference);
    eprintln!(
        "{xtc}: {atoms} atoms, {frames} frames, box {:?} nm; frame 0 vs {pdb}: RMSD {rms:.4} Å, max {max:.4} Å",
        all[0].boxvec_cols_2d()
    );
    Some((traj, reference))
}

/// Grid 0.01 Å (XTC precision 1000/nm) → ≤ 0.005 Å per axis, plus the PDB's 0.0005 Å rounding.
const XTC_VS_PDB: f64 = 0.0095;

#[test]
fn xtc_adk_oplsaa() {
    let Some((traj, pdb)) = load_xtc_case("traj/adk_oplsaa.xtc", "pdb/adk_oplsaa.pdb", 47_681, 10) else { return };
    // The PDB is frame 0 (measured: RMSD 0.0050 Å, max 0.0087 Å).
    let (rms, max) = rmsd_raw(&traj[0], &pdb);
    assert!(rms < 0.006 && max < XTC_VS_PDB, "frame 0 vs PDB: rms {rms}, max {max}");
    assert!(rmsd_raw(&traj[9], &pdb).0 > 1.0, "the last frame has moved");
}

#[test]
fn xtc_cobrotoxin() {
    let Some((traj, pdb)) = load_xtc_case("traj/cobrotoxin.xtc", "pdb/cobrotoxin.pdb", 19_385, 3) else { return };
    // 918 protein atoms, then 18 448 water atoms and 19 ions.
    let protein = 918;
    // The PDB is not frame 0 (raw RMSD 29 Å; protein superposed 1.56 Å) …
    assert!(rmsd_raw(&traj[0], &pdb).0 > 20.0);
    let fit0 = rmsd_fit(&traj[0][..protein], &pdb[..protein]);
    let fit2 = rmsd_fit(&traj[2][..protein], &pdb[..protein]);
    eprintln!("cobrotoxin protein superposed on the PDB: frame 0 {fit0:.3} Å, frame 2 {fit2:.4} Å");
    assert!((fit0 - 1.557).abs() < 0.01, "{fit0}");
    // … but the last frame, translated and wrapped into the PDB's 52.84 Å cubic box (CRYST1; the
    // XTC's box is 52.763 Å).
    assert!(fit2 < 0.01, "{fit2}");
    #[allow(clippy::cast_precision_loss)]
    let shift = traj[2][..protein].iter().zip(&pdb).fold(Vec3::ZERO, |s, (p, q)| s + (*q - *p)) / protein as f32;
    let edge = 52.84f32;
    let mut worst = 0.0f32;
    for (p, q) in traj[2].iter().zip(&pdb) {
        let d = *q - (*p + shift);
        worst = worst.max((d - (d / edge).round() * edge).length());
    }
    eprintln!("cobrotoxin frame 2 + {shift} Å, wrapped into the 52.84 Å box: max deviation {worst:.4} Å from the PDB");
    assert!((shift - Vec3::new(0.944, 3.116, 0.853)).length() < 0.005, "{shift}");
    assert!(f64::from(worst) < XTC_VS_PDB, "{worst}");
}

#[test]
fn xtc_truncated_is_an_error() {
    let Some(data) = common::shared_data() else { return };
    let bytes = std::fs::read(data.join("traj/cobrotoxin.xtc")).unwrap();
    assert_eq!(read_xtc_angstrom_bytes(&bytes).unwrap().len(), 3);
    for len in [10, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = read_xtc_angstrom_bytes(&bytes[..len]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "len {len}");
    }
}

/// molly's decode speed from memory (run in release with `--ignored --nocapture`).
#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn xtc_decode_speed_molly() {
    let Some(data) = common::shared_data() else { return };
    for name in ["traj/adk_oplsaa.xtc", "traj/cobrotoxin.xtc"] {
        let bytes = std::fs::read(data.join(name)).unwrap();
        let mut frame = molly::Frame::default();
        let mut scratch = Vec::new();
        let (mut frames, mut atoms, mut passes) = (0u64, 0u64, 0u32);
        let mut best = Duration::MAX;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) || passes < 3 {
            let t = Instant::now();
            let mut reader = molly::XTCReader::new(&bytes[..]);
            let mut n = 0u64;
            while !reader.file.is_empty() {
                reader
                    .read_frame_with_scratch(&mut frame, &mut scratch, &molly::selection::AtomSelection::All)
                    .unwrap();
                atoms += frame.natoms() as u64;
                n += 1;
            }
            best = best.min(t.elapsed());
            frames += n;
            passes += 1;
        }
        let secs = t0.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let per_pass = frames as f64 / f64::from(passes);
        eprintln!(
            "molly {name}: {} bytes, {per_pass} frames/pass, {passes} passes; mean {:.1} frames/s, {:.1} M atoms/s, \
             {:.1} MB/s compressed; best pass {:.2} ms ({:.1} frames/s)",
            bytes.len(),
            frames as f64 / secs,
            atoms as f64 / secs / 1e6,
            bytes.len() as f64 * f64::from(passes) / secs / 1e6,
            best.as_secs_f64() * 1e3,
            per_pass / best.as_secs_f64()
        );
    }

    // DCD read speed, for comparison.
    let bytes = std::fs::read(data.join("traj/adk_dims.dcd")).unwrap();
    let t = Instant::now();
    let mut passes = 0u32;
    while t.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(read_dcd(std::hint::black_box(&bytes)).unwrap());
        passes += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "read_dcd adk_dims.dcd: {:.1} frames/s, {:.0} MB/s",
        98.0 * f64::from(passes) / secs,
        bytes.len() as f64 * f64::from(passes) / secs / 1e6
    );
}
