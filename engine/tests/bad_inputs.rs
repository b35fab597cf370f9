//! Bad inputs: every broken file must give a *typed* [`LoadError`] that names the file (and the
//! line, where there is one), in a single-line message, and no input may panic the loader.
//!
//! - the three broken files of `../shared/data/bad` (skipped when that directory is absent);
//! - hand-made cases: empty, whitespace-only, binary, a directory, a missing file, truncated
//!   gzip, garbage coordinates, text that is neither format, an unclosed CIF quote, a CIF
//!   without `atom_site`, limits;
//! - regressions found by fuzzing (`fuzz/`, see fuzz/README.md);
//! - a deterministic mutation test over three assets (~300 mutants each), run with the default
//!   options, pdbtbx validation included.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use molstream_engine::io::{Format, LoadError, LoadOptions, load_bytes, load_file};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh directory under the system temp dir, unique to this process and call.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("molstream-bad-inputs-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Writes `bytes` to `<fresh temp dir>/<name>` and returns the path.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = temp_dir().join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn load_err(path: &Path) -> LoadError {
    match load_file(path, &opts()) {
        Ok(l) => panic!("{} loaded ({} models) but should fail", path.display(), l.complex.models.len()),
        Err(e) => e,
    }
}

fn load_bytes_err(bytes: &[u8], name: &str, hint: Option<Format>) -> LoadError {
    match load_bytes(bytes, name, hint, &opts()) {
        Ok(l) => panic!("{name} loaded ({} models) but should fail", l.complex.models.len()),
        Err(e) => e,
    }
}

/// The error's message is one line and names the file (by its file name at least).
fn assert_display(e: &LoadError, file: &str) {
    let s = e.to_string();
    let short = Path::new(file).file_name().and_then(|n| n.to_str()).unwrap_or(file);
    assert!(s.contains(short), "message does not name {short:?}: {s}");
    assert!(!s.contains('\n') && !s.contains('\r'), "message is not a single line: {s:?}");
    assert!(!s.trim().is_empty());
}

/// Asserts a `Syntax` error at `line` and returns its message.
fn assert_syntax(e: &LoadError, file: &str, line: usize) -> String {
    assert_display(e, file);
    match e {
        LoadError::Syntax { file: f, line: l, message } => {
            assert!(f.contains(Path::new(file).file_name().and_then(|n| n.to_str()).unwrap_or(file)), "{f}");
            assert_eq!(*l, line, "wrong line in {e}");
            assert!(e.to_string().contains(&format!(":{line}:")), "line not in message: {e}");
            message.clone()
        }
        other => panic!("expected Syntax at line {line}, got {other:?}"),
    }
}

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(common::assets().join(name)).expect("asset")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

// ---------------------------------------------------------------------------------------------
// ../shared/data/bad

/// `incomplete.pdb` (MDAnalysis' test file for its issue #396): two `MODEL 1` records, each
/// closed by ENDMDL, with 54-column atom lines (no occupancy, B-factor or element) and the
/// model serial in the wrong column. Model numbers must be unique (gemmi refuses it the same
/// way: "duplicate MODEL number: 1"): `Syntax` at line 8. Renumbered, it loads; cut before its
/// last ENDMDL, it ends inside the MODEL opened at line 8: `Truncated` naming line 8.
#[test]
fn shared_incomplete_pdb_is_refused_at_line_8() {
    let Some(data) = common::shared_data() else { return };
    let path = data.join("bad/incomplete.pdb");
    let msg = assert_syntax(&load_err(&path), "incomplete.pdb", 8);
    assert!(msg.contains("duplicate MODEL number 1"), "{msg}");

    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let mut renumbered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    renumbered[7] = "MODEL 2".into();
    let fixed = renumbered.join("\n");
    let loaded = load_bytes(fixed.as_bytes(), "incomplete.pdb", Some(Format::Pdb), &opts()).expect("renumbered loads");
    assert_eq!(loaded.complex.models.len(), 2);
    assert!(loaded.complex.models.iter().all(|m| m.positions.len() == 3));
    assert!(loaded.warnings.iter().any(|w| w.message.contains("element")), "{:?}", loaded.warnings);
    // Cut anywhere inside the second model (ATOM or TER lines, or just before ENDMDL): line 8.
    for keep in 8..14 {
        let e = load_bytes_err(renumbered[..keep].join("\n").as_bytes(), "incomplete.pdb", Some(Format::Pdb));
        assert_display(&e, "incomplete.pdb");
        match &e {
            LoadError::Truncated { line: 8, message, .. } => assert!(message.contains("ENDMDL"), "{message}"),
            other => panic!("{keep} lines: expected Truncated at line 8, got {other:?}"),
        }
    }
}

#[test]
fn shared_conect_error_names_line_10() {
    let Some(data) = common::shared_data() else { return };
    let path = data.join("bad/conect_error.pdb");
    let msg = assert_syntax(&load_err(&path), "conect_error.pdb", 10);
    assert!(msg.contains("CONECT"), "{msg}");
    // Also without bond inference: CONECT records are always resolved.
    let e = load_file(&path, &LoadOptions { infer_bonds: false, ..opts() }).expect_err("must fail");
    assert_syntax(&e, "conect_error.pdb", 10);
}

#[test]
fn shared_invalid_cif_names_line_793() {
    let Some(data) = common::shared_data() else { return };
    let msg = assert_syntax(&load_err(&data.join("bad/1YJP_invalid.cif")), "1YJP_invalid.cif", 793);
    assert!(msg.contains("WRONG"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Hand-made files

#[test]
fn empty_and_whitespace_files_are_empty() {
    for (name, bytes) in [
        ("empty.pdb", &b""[..]),
        ("blank.cif", b"   \n\n\t \r\n  "),
        ("noext", b"\n"),
        ("empty.pdb.gz", &gzip(b"")[..]),
    ] {
        let path = temp_file(name, bytes);
        let e = load_err(&path);
        assert_display(&e, name);
        assert!(matches!(&e, LoadError::Empty { file } if file.ends_with(name)), "{name}: {e:?}");
    }
}

#[test]
fn binary_data_is_binary() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..4096).map(|_| (xorshift(&mut state) >> 24) as u8).collect();
    // Random bytes (with NULs), invalid UTF-8 without any NUL, and NULs after a valid header.
    let no_nul: Vec<u8> = b"ATOM      1  N   \xff\xfe\x80".to_vec();
    let mut late_nul = asset("1hvr.pdb")[..2000].to_vec();
    late_nul.extend_from_slice(&[0, 0, 0, 1]);
    for (name, bytes) in [("random.bin", &random), ("latin1.pdb", &no_nul), ("nul.pdb", &late_nul)] {
        let path = temp_file(name, bytes);
        let e = load_err(&path);
        assert_display(&e, name);
        assert!(matches!(&e, LoadError::Binary { file, detail: Some(_) } if file.ends_with(name)), "{name}: {e:?}");
        // Binary is refused whatever the extension says, also inside gzip.
        let e = load_bytes_err(&gzip(bytes), name, Some(Format::Mmcif));
        assert!(matches!(e, LoadError::Binary { .. }), "{name} gz: {e:?}");
    }
}

#[test]
fn a_directory_is_is_directory() {
    let dir = temp_dir().join("looks_like.pdb");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let e = load_err(&dir);
    assert_display(&e, "looks_like.pdb");
    assert!(matches!(&e, LoadError::IsDirectory { file } if file.ends_with("looks_like.pdb")), "{e:?}");
}

#[test]
fn a_missing_file_is_io() {
    let path = temp_dir().join("does_not_exist.cif");
    let e = load_err(&path);
    assert_display(&e, "does_not_exist.cif");
    match &e {
        LoadError::Io { file, source } => {
            assert!(file.ends_with("does_not_exist.cif"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn truncated_gzip_is_gzip() {
    let gz = gzip(&asset("1hvr.pdb"));
    for (name, bytes) in [
        ("half.pdb.gz", &gz[..gz.len() / 2]),
        ("header_only.pdb.gz", &gz[..10]),
        ("magic_only.gz", &gz[..2]),
        ("no_trailer.pdb.gz", &gz[..gz.len() - 4]),
    ] {
        let path = temp_file(name, bytes);
        let e = load_err(&path);
        assert_display(&e, name);
        assert!(matches!(&e, LoadError::Gzip { file, .. } if file.ends_with(name)), "{name}: {e:?}");
    }
    // Corrupt deflate data (not just cut short).
    let mut bad = gz.clone();
    for b in &mut bad[20..60] {
        *b ^= 0x5a;
    }
    let e = load_bytes_err(&bad, "corrupt.pdb.gz", None);
    assert!(matches!(e, LoadError::Gzip { .. }), "{e:?}");
    // The whole file decompresses and loads.
    let path = temp_file("1hvr.pdb.gz", &gz);
    let loaded = load_file(&path, &opts()).expect("whole gzip loads");
    assert_eq!(loaded.complex.name, "1hvr");
}

#[test]
fn garbage_coordinates_name_the_line() {
    let text = String::from_utf8(asset("1hvr.pdb")).expect("utf8");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let atoms: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("ATOM")).collect();
    for (k, (cols, garbage)) in
        [(30..38, "  12.3.4"), (38..46, "   abcde"), (46..54, "     NaN"), (30..38, "     inf"), (38..46, "        ")]
            .into_iter()
            .enumerate()
    {
        let i = atoms[100 + 37 * k];
        let original = lines[i].clone();
        lines[i].replace_range(cols, garbage);
        let name = format!("garbage{k}.pdb");
        let path = temp_file(&name, lines.join("\n").as_bytes());
        let msg = assert_syntax(&load_err(&path), &name, i + 1);
        assert!(msg.contains("coordinate"), "{msg}");
        lines[i] = original;
    }
    // A short ATOM line (no room for z).
    let i = atoms[5];
    lines[i].truncate(40);
    let msg = assert_syntax(&load_bytes_err(lines.join("\n").as_bytes(), "short.pdb", None), "short.pdb", i + 1);
    assert!(msg.contains("54"), "{msg}");
}

#[test]
fn garbage_cif_coordinates_name_the_row() {
    let text = String::from_utf8(asset("1YJP.cif")).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    let row = lines.iter().position(|l| l.starts_with("ATOM   10 ")).expect("row 10");
    for bad in ["abc", "NaN", "inf", "-inf", "1e39", "1.2.3"] {
        let mut ls: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
        let mut toks: Vec<&str> = ls[row].split_whitespace().collect();
        toks[11] = bad; // Cartn_y
        ls[row] = toks.join(" ");
        let msg =
            assert_syntax(&load_bytes_err(ls.join("\n").as_bytes(), "1YJP_bad.cif", None), "1YJP_bad.cif", row + 1);
        assert!(msg.contains("coordinate"), "{bad}: {msg}");
    }
}

#[test]
fn neither_format_is_unknown_format() {
    for (name, text) in [
        ("notes.txt", "hello world\nthis is not a structure file\n"),
        ("data.csv", "x,y,z\n1,2,3\n"),
        ("comment_only", "# only a comment\n\n# and another\n"),
    ] {
        let path = temp_file(name, text.as_bytes());
        let e = load_err(&path);
        assert_display(&e, name);
        assert!(matches!(&e, LoadError::UnknownFormat { file } if file.ends_with(name)), "{name}: {e:?}");
    }
    // gzip of unknown text, no extension to help.
    let e = load_bytes_err(&gzip(b"just some words\n"), "mystery.gz", None);
    assert!(matches!(e, LoadError::UnknownFormat { .. }), "{e:?}");
}

#[test]
fn cif_with_an_unclosed_quote_is_syntax() {
    let cases: [(&str, usize); 4] = [
        ("data_x\n_atom_site.group_PDB 'ATOM\n_atom_site.id 1\n", 2),
        ("data_x\n#\nloop_\n_atom_site.id\n_atom_site.type_symbol\n1 \"C\n", 6),
        ("data_x\n_struct.title 'never closed", 2),
        ("data_x\n_struct.title\n;text field\nnever closed\n", 3),
    ];
    for (k, (text, line)) in cases.into_iter().enumerate() {
        let name = format!("unclosed{k}.cif");
        let path = temp_file(&name, text.as_bytes());
        let msg = assert_syntax(&load_err(&path), &name, line);
        assert!(msg.contains("not closed") || msg.contains("past the end"), "{msg}");
    }
}

#[test]
fn cif_without_atom_site_is_no_atoms() {
    let text = "data_x\n_cell.length_a 10.0\n_cell.length_b 10.0\nloop_\n_entity.id\n_entity.type\n1 polymer\n";
    let path = temp_file("no_atoms.cif", text.as_bytes());
    let e = load_err(&path);
    assert_display(&e, "no_atoms.cif");
    assert!(matches!(&e, LoadError::NoAtoms { file } if file.ends_with("no_atoms.cif")), "{e:?}");
    // The asset with its atom_site loop (from its `loop_` to the next `#`) cut out.
    let cif = String::from_utf8(asset("1YJP.cif")).expect("utf8");
    let lines: Vec<&str> = cif.lines().collect();
    let first_tag = lines.iter().position(|l| l.starts_with("_atom_site.")).expect("atom_site");
    assert_eq!(lines[first_tag - 1].trim(), "loop_");
    let end = first_tag + lines[first_tag..].iter().position(|l| l.starts_with('#')).expect("#");
    let kept = [&lines[..first_tag - 1], &lines[end..]].concat().join("\n");
    let e = load_bytes_err(kept.as_bytes(), "1YJP_cut.cif", None);
    assert!(matches!(e, LoadError::NoAtoms { .. }), "{e:?}");
}

#[test]
fn pdb_without_atoms_is_no_atoms() {
    for (name, text) in [
        ("header_only.pdb", "HEADER    NOTHING HERE\nREMARK   1 none\nEND\n"),
        ("empty_models.pdb", "MODEL        1\nENDMDL\nMODEL        2\nENDMDL\nEND\n"),
    ] {
        let e = load_bytes_err(text.as_bytes(), name, None);
        assert_display(&e, name);
        assert!(matches!(e, LoadError::NoAtoms { .. }), "{name}: {e:?}");
    }
}

#[test]
fn model_records_out_of_order_are_syntax() {
    let atom = "ATOM      1  CA  ALA A   1      11.104   6.134  -6.504  1.00  0.00           C";
    let text = format!("MODEL        1\n{atom}\nMODEL        2\n{atom}\nENDMDL\n");
    let msg = assert_syntax(&load_bytes_err(text.as_bytes(), "nested.pdb", None), "nested.pdb", 3);
    assert!(msg.contains("line 1"), "{msg}");
    let text = format!("{atom}\nENDMDL\n");
    assert_syntax(&load_bytes_err(text.as_bytes(), "stray.pdb", None), "stray.pdb", 2);
    // A MODEL the file ends inside of: Truncated at the MODEL line.
    let text = format!("REMARK   1\nMODEL        1\n{atom}\nENDMDL\nMODEL        2\n{atom}\n");
    let e = load_bytes_err(text.as_bytes(), "cut.pdb", None);
    assert_display(&e, "cut.pdb");
    assert!(matches!(e, LoadError::Truncated { line: 5, .. }), "{e:?}");
    // Closed by END instead: accepted with a warning.
    let text = format!("MODEL        1\n{atom}\nEND\n");
    let loaded = load_bytes(text.as_bytes(), "end.pdb", None, &opts()).expect("END closes a model");
    assert!(loaded.warnings.iter().any(|w| w.line == Some(1)), "{:?}", loaded.warnings);
}

#[test]
fn bad_conect_and_residue_numbers_are_syntax() {
    let atom = "ATOM      1  CA  ALA A   1      11.104   6.134  -6.504  1.00  0.00           C";
    let text = format!("{atom}\nCONECT    1   xx\n");
    assert_syntax(&load_bytes_err(text.as_bytes(), "conect.pdb", None), "conect.pdb", 2);
    let text = format!("{atom}\nCONECT    1    7\n");
    assert_syntax(&load_bytes_err(text.as_bytes(), "conect2.pdb", None), "conect2.pdb", 2);
    let mut bad = atom.to_owned();
    bad.replace_range(22..26, "1?3x");
    let text = format!("{atom}\n{bad}\n");
    assert_syntax(&load_bytes_err(text.as_bytes(), "resnum.pdb", None), "resnum.pdb", 2);
}

#[test]
fn limits_are_too_large() {
    let bytes = asset("1hvr.pdb");
    let small = LoadOptions { max_atoms: 100, ..opts() };
    let e = load_bytes(&bytes, "1hvr.pdb", None, &small).expect_err("too many atoms");
    assert_display(&e, "1hvr.pdb");
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e:?}");
    let cif = asset("1YJP.cif");
    let e = load_bytes(&cif, "1YJP.cif", None, &LoadOptions { max_atoms: 10, ..opts() }).expect_err("too many atoms");
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e:?}");
    let tiny = LoadOptions { max_bytes: 1000, ..opts() };
    let path = temp_file("big.pdb", &bytes);
    let e = load_file(&path, &tiny).expect_err("too many bytes");
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e:?}");
    // A gzip bomb stops at max_bytes.
    let e = load_bytes(&gzip(&vec![b' '; 1 << 20]), "bomb.pdb.gz", None, &tiny).expect_err("bomb");
    assert_display(&e, "bomb.pdb.gz");
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Regressions found by fuzzing and by the mutation test below

/// A `data_`-like word whose 5th byte falls inside a multi-byte character panicked the CIF
/// lexer (`word[..5]`).
#[test]
fn cif_lexer_survives_multibyte_words() {
    for text in ["data_x\n_atom_site.id 1\ndataé 2\n", "data_x\nloop_\n_atom_site.id\nsaveé\n", "abcdé\ndata_x\n"] {
        let r = load_bytes(text.as_bytes(), "multibyte.cif", Some(Format::Mmcif), &opts());
        if let Err(e) = r {
            assert_display(&e, "multibyte.cif");
        }
    }
}

/// Coordinates at the edge of `f32` (`3e38` and `-3e38` in one file) made the extent of the
/// bond-inference grid infinite and its cell-size loop never ended (fixed in bonds.rs: such
/// atoms are never bonded). They load, promptly, and stay where the file put them.
#[test]
fn huge_coordinates_load_without_hanging() {
    let a = "ATOM      1  CA  ALA A   1      3.0e38   6.134  -6.504  1.00  0.00           C";
    let b = "ATOM      2  CA  ALA A   2     -3.0e38   6.134  -6.504  1.00  0.00           C";
    let c = "ATOM      3  CA  ALA A   3    99999.99-9999.99 9999999  1.00  0.00           C";
    let t0 = std::time::Instant::now();
    let loaded = load_bytes(format!("{a}\n{b}\n{c}\n").as_bytes(), "huge.pdb", None, &opts()).expect("loads");
    assert_eq!(loaded.complex.models[0].positions[0].x, 3.0e38);
    let cif = "data_x\nloop_\n_atom_site.group_PDB\n_atom_site.type_symbol\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n\
               _atom_site.Cartn_z\nATOM C 1.0 2.0 3.0\nATOM C 3.4e38 0 0\nATOM C -3.4e38 -3.4e38 3.4e38\n";
    let loaded = load_bytes(cif.as_bytes(), "huge.cif", None, &opts()).expect("loads");
    assert_eq!(loaded.complex.models[0].positions.len(), 3);
    assert!(t0.elapsed().as_secs() < 10, "took {:?}", t0.elapsed());
    // Past f32: not finite, a syntax error on its line.
    let cif = cif.replace("3.4e38 0 0", "3.5e38 0 0");
    let msg = assert_syntax(&load_bytes_err(cif.as_bytes(), "huge.cif", None), "huge.cif", 9);
    assert!(msg.contains("coordinate"), "{msg}");
}

/// Regression: `detect_format` (io/mod.rs) sliced each line it scanned at byte 5, which panicked
/// when that byte fell inside a multi-byte character (reachable without a format hint). Found
/// by `fuzz/` (`load_any`, after ~190k executions): the artifact `\t\x01DD:Ӣ` (mode byte `\t` =
/// gzip the rest).
#[test]
fn format_detection_survives_multibyte_first_line() {
    for (name, bytes) in [("odd.txt", "abcdé\n".as_bytes().to_vec()), ("fuzz", gzip("\u{1}DD:Ӣ".as_bytes()))] {
        let e = load_bytes_err(&bytes, name, None);
        assert_display(&e, name);
        assert!(matches!(e, LoadError::UnknownFormat { .. }), "{e:?}");
    }
    // A PDB whose first line has one: still detected as PDB.
    let text = "remaé\nATOM      1  CA  ALA A   1      11.104   6.134  -6.504  1.00  0.00           C\n";
    load_bytes(text.as_bytes(), "odd2.txt", None, &opts()).expect("PDB after an odd first line");
}

/// pdbtbx panics on these (found by `fuzz/load_pdb`: "Invalid characters in atom creation",
/// "start byte index out of bounds" on MODRES, "Invalid characters in Residue creation",
/// "range start index out of range"); the panic stays behind validate.rs's boundary and the file
/// loads with molstream's reader. (The fuzz corpus held 22 distinct pdbtbx panics after 4
/// minutes, all caught.)
#[test]
fn pdbtbx_panics_stay_behind_the_boundary() {
    let cases: [&[u8]; 4] = [
        b"1.89  1         C  \nATOM   10  CE\x12 PHE A SEQRES   -6.501  -3.340   1.24   \nEND\n",
        b"MODRESHELIX            C  \nATOM     12  H1  PHE A   1      -8.109  -0.077  -2.473  1.00  20.52        N  \nATOCA  PHE A   1   ",
        b"MODEL        1                                                                  \nATOM      1  N   PHE A   1\x18     -8.154  -0.523  -1.535  1.00 962  24.196           O  \nATOM     26  CB  VAL A   3     -11.730  33.474  26.320       \nENDMDL                      \nEN      D\nC",
        b"MODEL        1                                                                  \nATOM    26  CB  VAL A   3     -11.730  33.474  26.320       \nENDMDL                       477  0.00 1:.00           H  \nATOM     30  N   THR A   4     -06.612  34.301  22.976  1.00 29.   -13.127  33.279    \nSEQADVEN      D\nC",
    ];
    for (k, bytes) in cases.into_iter().enumerate() {
        let plain =
            load_bytes(bytes, "p.pdb", Some(Format::Pdb), &LoadOptions { validate_with_pdbtbx: false, ..opts() })
                .unwrap_or_else(|e| panic!("case {k}: {e}"));
        let checked =
            load_bytes(bytes, "p.pdb", Some(Format::Pdb), &opts()).unwrap_or_else(|e| panic!("case {k}: {e}"));
        assert_eq!(plain.complex.models[0].positions, checked.complex.models[0].positions, "case {k}");
        assert!(checked.warnings.iter().any(|w| w.message.contains("pdbtbx")), "case {k}: {:?}", checked.warnings);
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic mutation test

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        xorshift(&mut self.0)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const ASCII_NOISE: &[u8] = b" \n\r\t'\";#_.?-+0123456789eE.ATOMHETATMdata_loop_save_xyzXYZ*:,()";
const UTF8_NOISE: &[&str] = &["é", "Å", "∞", "µ", "😀", "\u{a0}", "\u{feff}", "ß", "日本"];
const NUMBER_NOISE: &[&str] = &[
    "NaN", "nan", "inf", "-inf", "+inf", "infinity", "1e38", "-1e38", "3.4e38", "-3.4e38", "3e38", "-3e38", "1e39",
    "-1e39", "1e-45", "0", "-0", "99999999", "-9999999", "1e9", "1.0e10", "1e308", "1e-400", "", "-", ".", "1e",
];

/// Lines of `text` with their ATOM/HETATM records thinned: all other records kept, at most
/// `per_model` atom records per model and at most `models` models (a small but complete file).
fn excerpt(text: &str, per_model: usize, models: usize) -> String {
    let mut out = String::new();
    let (mut in_model, mut seen_models, mut atoms) = (0usize, 0usize, 0usize);
    for l in text.lines() {
        if l.starts_with("MODEL") {
            seen_models += 1;
            atoms = 0;
            in_model = seen_models;
        }
        if in_model > models {
            if l.starts_with("END") && !l.starts_with("ENDMDL") {
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        let atom = l.starts_with("ATOM") || l.starts_with("HETATM") || l.starts_with("ANISOU");
        if l.starts_with("CONECT") || (l.starts_with("REMARK") && !l.starts_with("REMARK   2")) {
            continue;
        }
        if atom {
            atoms += 1;
            if atoms > per_model {
                continue;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The token index of `_atom_site.Cartn_x` in the atom_site loop of a CIF.
fn cartn_x_index(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("_atom_site."))
        .position(|l| l.trim().eq_ignore_ascii_case("_atom_site.Cartn_x"))
        .expect("Cartn_x")
}

fn mutate(rng: &mut Rng, base: &[u8], cif_x: Option<usize>) -> Vec<u8> {
    let mut b = base.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        if b.is_empty() {
            break;
        }
        match rng.below(9) {
            // Truncate at a random byte.
            0 => {
                let at = rng.below(b.len() + 1);
                b.truncate(at);
            }
            // Replace random bytes with random ASCII.
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(b.len());
                    b[i] = *rng.pick(ASCII_NOISE);
                }
            }
            // Flip random bits (may break UTF-8, insert NULs).
            2 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            // Insert non-ASCII UTF-8 characters (at char boundaries, or anywhere).
            3 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len() + 1);
                    let s = rng.pick(UTF8_NOISE).as_bytes();
                    b.splice(i..i, s.iter().copied());
                }
            }
            // Replace a character by a non-ASCII one at a column that matters (record names,
            // `data_`, the 5th byte of a word).
            4 => {
                let i = rng.below(b.len());
                let start = b[..i].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
                let col = start + rng.below(8);
                if col < b.len() {
                    let s = rng.pick(UTF8_NOISE).as_bytes();
                    b.splice(col..=col, s.iter().copied());
                }
            }
            // Delete or duplicate random lines.
            5 | 6 => {
                let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                for _ in 0..1 + rng.below(5) {
                    let i = rng.below(lines.len());
                    if rng.below(2) == 0 {
                        lines.remove(i);
                        if lines.is_empty() {
                            break;
                        }
                    } else {
                        let dup = lines[i].clone();
                        let j = rng.below(lines.len() + 1);
                        lines.insert(j, dup);
                    }
                }
                b = lines.join(&b'\n');
            }
            // NaN/inf/huge numbers into coordinate columns.
            _ => {
                let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let atom_lines: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].starts_with(b"ATOM") || lines[i].starts_with(b"HETATM"))
                    .collect();
                if atom_lines.is_empty() {
                    continue;
                }
                for _ in 0..1 + rng.below(4) {
                    let i = *rng.pick(&atom_lines);
                    let v = *rng.pick(NUMBER_NOISE);
                    let axis = rng.below(3);
                    match cif_x {
                        Some(x) => {
                            let line = String::from_utf8_lossy(&lines[i]).into_owned();
                            let mut toks: Vec<&str> = line.split_whitespace().collect();
                            if x + axis < toks.len() {
                                toks[x + axis] = if v.is_empty() { "?" } else { v };
                                lines[i] = toks.join(" ").into_bytes();
                            }
                        }
                        None => {
                            let (a, w) = (30 + 8 * axis, 8);
                            if lines[i].len() < a + w {
                                lines[i].resize(a + w, b' ');
                            }
                            let f = format!("{v:>8}");
                            let f = &f.as_bytes()[f.len().saturating_sub(w)..];
                            lines[i][a..a + w].copy_from_slice(f);
                        }
                    }
                }
                b = lines.join(&b'\n');
            }
        }
    }
    b
}

#[test]
fn mutants_never_panic() {
    let nmr = String::from_utf8(asset("nmr_neopetrosiamide.pdb")).expect("utf8");
    let hvr = String::from_utf8(asset("1hvr.pdb")).expect("utf8");
    let cif = String::from_utf8(asset("1YJP.cif")).expect("utf8");
    let bases: [(&str, String, Option<Format>, Option<usize>); 3] = [
        ("1hvr.pdb", excerpt(&hvr, 400, 1), Some(Format::Pdb), None),
        ("nmr_neopetrosiamide.pdb", excerpt(&nmr, 40, 4), Some(Format::Pdb), None),
        ("1YJP.cif", cif.clone(), Some(Format::Mmcif), Some(cartn_x_index(&cif))),
    ];
    let options = LoadOptions::default();
    assert!(options.validate_with_pdbtbx);
    let t0 = std::time::Instant::now();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut ok, mut err) = (0usize, 0usize);
    for (name, base, hint, cif_x) in &bases {
        // The excerpt itself loads.
        load_bytes(base.as_bytes(), name, *hint, &options).unwrap_or_else(|e| panic!("base {name}: {e}"));
        for k in 0..300 {
            let m = mutate(&mut rng, base.as_bytes(), *cif_x);
            // Alternate: the extension's hint, no hint (content sniffing), and gzip.
            let (bytes, hint) = match k % 3 {
                0 => (m.clone(), *hint),
                1 => (m.clone(), None),
                _ => (gzip(&m), *hint),
            };
            let result = std::panic::catch_unwind(|| load_bytes(&bytes, name, hint, &options));
            match result {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(e)) => {
                    err += 1;
                    assert_display(&e, name);
                }
                Err(_) => {
                    let path = std::env::temp_dir().join(format!("molstream-mutant-{name}-{k}"));
                    let _ = std::fs::write(&path, &m);
                    panic!("{name} mutant {k} panicked the loader (hint {hint:?}); saved to {}", path.display());
                }
            }
        }
    }
    eprintln!("mutants: {ok} loaded, {err} refused, {:.1} s", t0.elapsed().as_secs_f32());
    println!("mutants: {ok} loaded, {err} refused, {:.1} s", t0.elapsed().as_secs_f32());
    assert!(ok > 50 && err > 50, "{ok} loaded, {err} refused: mutations too mild or too harsh");
}
