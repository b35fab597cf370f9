//! DCD trajectories (CHARMM, NAMD, X-PLOR, LAMMPS), read from bytes.
//!
//! A DCD file is a sequence of Fortran unformatted records, each framed by a leading and a
//! trailing length marker:
//!
//! 1. `[84] "CORD" ICNTRL[20] [84]`: the magic (`CORD`, or `VELD` for velocity files) and twenty
//!    32-bit control words: `NSET` (frame count as written, often stale), `ISTART`, `NSAVC`,
//!    `NSTEP`, …, the number of fixed atoms (`ICNTRL[8]`), the timestep, the unit-cell flag
//!    (`ICNTRL[10]`), the 4D flag (`ICNTRL[11]`) and the CHARMM version (`ICNTRL[19]`, non-zero for
//!    CHARMM-style files);
//! 2. the title: `NTITLE` followed by `NTITLE` lines of 80 bytes;
//! 3. `NATOM`;
//! 4. per frame: an optional unit-cell record of six `f64` (CHARMM files whose `ICNTRL[10]` is
//!    set), then the X, Y and Z records of `NATOM` `f32` each (Å), then a fourth W record in 4D
//!    files (skipped).
//!
//! The byte order is detected from the first marker (84 read as little- or big-endian); 64-bit
//! markers (written by some old Fortran compilers) are detected the same way. Files with fixed
//! atoms (frames after the first store only the free ones) are refused with
//! [`TrajError::Unsupported`].
//!
//! The frame count comes from the file size, not from `NSET`: writers often leave `NSET` at the
//! planned length of the run. A file whose last frame is incomplete gives
//! [`TrajError::Truncated`] naming that frame, after the complete ones (from [`DcdReader`]) or
//! instead of them (from [`read_dcd`]).
//!
//! Nothing here panics on any input, and allocations never exceed the input length (positions
//! are allocated only for frames whose bytes are all present).

use std::iter::FusedIterator;

use glam::Vec3;

use super::TrajError;

/// The AKMA unit of time in picoseconds (CHARMM and NAMD write the DCD timestep in it).
pub const AKMA_PS: f64 = 0.048_888_21;

/// Byte order of a binary file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first (x86, ARM).
    Little,
    /// Most significant byte first.
    Big,
}

/// Everything a DCD file says before its first frame.
#[derive(Clone, Debug, PartialEq)]
pub struct DcdHeader {
    /// Byte order of the file.
    pub endian: Endian,
    /// Width of the Fortran record markers: 4 (usual) or 8 bytes.
    pub marker_bytes: usize,
    /// The magic of the first record: `CORD` (coordinates) or `VELD` (velocities).
    pub magic: [u8; 4],
    /// The twenty control words as written (`ICNTRL[9]` holds the timestep's bits).
    pub icntrl: [i32; 20],
    /// `NSET`: the frame count the writer announced; the actual count comes from the file size.
    pub nset: i32,
    /// `ISTART`: the step of the first frame.
    pub istart: i32,
    /// `NSAVC`: steps between frames.
    pub nsavc: i32,
    /// `NSTEP`: the total number of steps (or the last step, depending on the writer).
    pub nstep: i32,
    /// `ICNTRL[19]`, the CHARMM version, when non-zero; `None` for X-PLOR-style files.
    pub charmm_version: Option<i32>,
    /// Each frame starts with a unit-cell record (CHARMM files with `ICNTRL[10] != 0`).
    pub has_unit_cell: bool,
    /// Each frame has a fourth coordinate record (CHARMM files with `ICNTRL[11] != 0`).
    pub has_4d: bool,
    /// The integration timestep as written: AKMA units for CHARMM and NAMD (see
    /// [`DcdHeader::timestep_ps`]); LAMMPS writes its own time unit. X-PLOR files store it as
    /// an `f64`, rounded here.
    pub timestep: f32,
    /// Title lines (80 bytes each in the file), trailing blanks and NULs removed.
    pub title: Vec<String>,
    /// Atoms per frame.
    pub atoms: usize,
    /// Byte offset of the first frame.
    pub data_offset: usize,
    /// Bytes one frame takes, markers included.
    pub frame_bytes: usize,
}

impl DcdHeader {
    /// The timestep in picoseconds, reading it as AKMA units (CHARMM, NAMD).
    #[must_use]
    pub fn timestep_ps(&self) -> f64 {
        f64::from(self.timestep) * AKMA_PS
    }

    /// Time between saved frames in picoseconds (`NSAVC × timestep`), reading the timestep as
    /// AKMA units.
    #[must_use]
    pub fn frame_interval_ps(&self) -> f64 {
        f64::from(self.nsavc) * self.timestep_ps()
    }
}

/// One frame of a DCD file.
#[derive(Clone, Debug, PartialEq)]
pub struct DcdFrame {
    /// Atom positions in Å.
    pub positions: Vec<Vec3>,
    /// The unit cell as stored, when the file has one per frame. CHARMM order:
    /// `[A, cos γ or γ, B, cos β or β, cos α or α, C]` (lengths in Å; angles are cosines in
    /// CHARMM ≥ 22 files, degrees in older ones and in NAMD/LAMMPS output).
    pub unit_cell: Option<[f64; 6]>,
}

/// A whole DCD file in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dcd {
    /// Atoms per frame.
    pub atoms: usize,
    /// Positions in Å, one vector of `atoms` per frame.
    pub frames: Vec<Vec<Vec3>>,
    /// One unit cell per frame, as stored (see [`DcdFrame::unit_cell`]); empty when the file has
    /// none.
    pub unit_cells: Vec<[f64; 6]>,
    /// The timestep as written (see [`DcdHeader::timestep`]).
    pub timestep: f32,
    /// The full header.
    pub header: DcdHeader,
}

/// Reads a whole DCD file.
///
/// # Errors
/// Any [`TrajError`]: not a DCD file, a truncated header or frame, a record whose markers are
/// wrong, fixed atoms ([`TrajError::Unsupported`]).
pub fn read_dcd(bytes: &[u8]) -> Result<Dcd, TrajError> {
    let reader = DcdReader::new(bytes)?;
    let header = reader.header().clone();
    let n = reader.frames_in_file();
    if reader.is_truncated() {
        // Fail before decoding anything (this names frame `n`).
        if let Some(Err(err)) = reader.frame(n) {
            return Err(err);
        }
    }
    let mut frames = Vec::with_capacity(n);
    let mut unit_cells = if header.has_unit_cell { Vec::with_capacity(n) } else { Vec::new() };
    for frame in reader {
        let frame = frame?;
        frames.push(frame.positions);
        if let Some(cell) = frame.unit_cell {
            unit_cells.push(cell);
        }
    }
    Ok(Dcd { atoms: header.atoms, frames, unit_cells, timestep: header.timestep, header })
}

/// Walks the frames of a DCD file one at a time, holding only the bytes it borrows.
///
/// Yields `Ok` for each complete frame, then one [`TrajError::Truncated`] if the file ends
/// inside a frame; after any error it yields nothing more.
#[derive(Clone, Debug)]
pub struct DcdReader<'a> {
    bytes: &'a [u8],
    header: DcdHeader,
    next: usize,
    done: bool,
}

impl<'a> DcdReader<'a> {
    /// Parses the header.
    ///
    /// # Errors
    /// As [`read_dcd`], for the header part.
    pub fn new(bytes: &'a [u8]) -> Result<Self, TrajError> {
        let header = parse_header(bytes)?;
        Ok(Self { bytes, header, next: 0, done: false })
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &DcdHeader {
        &self.header
    }

    /// The number of complete frames in the file (from its size; see [`DcdHeader::nset`] for what
    /// the header claims).
    #[must_use]
    pub fn frames_in_file(&self) -> usize {
        self.data_len() / self.header.frame_bytes
    }

    /// Whether the file ends inside a frame.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        !self.data_len().is_multiple_of(self.header.frame_bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len().saturating_sub(self.header.data_offset)
    }

    /// Reads frame `index` (random access); `None` past the last complete frame, or
    /// [`TrajError::Truncated`] for the incomplete one at the end of a truncated file.
    #[must_use]
    pub fn frame(&self, index: usize) -> Option<Result<DcdFrame, TrajError>> {
        let h = &self.header;
        let complete = self.frames_in_file();
        if index < complete {
            // index * frame_bytes < data_len, so no overflow.
            Some(parse_frame(self.bytes, h, h.data_offset + index * h.frame_bytes))
        } else if index == complete && self.is_truncated() {
            Some(Err(TrajError::Truncated {
                frame: index,
                bytes: self.data_len() % h.frame_bytes,
                frame_bytes: h.frame_bytes,
            }))
        } else {
            None
        }
    }
}

impl Iterator for DcdReader<'_> {
    type Item = Result<DcdFrame, TrajError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.frame(self.next);
        match &item {
            Some(Ok(_)) => self.next += 1,
            Some(Err(_)) | None => self.done = true,
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let left = self.frames_in_file().saturating_sub(self.next) + usize::from(self.is_truncated());
        (left, Some(left))
    }
}

impl FusedIterator for DcdReader<'_> {}

/// Reads numbers and Fortran records at a position, in one byte order and marker width.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endian,
    marker_bytes: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TrajError> {
        let available = self.bytes.len().saturating_sub(self.pos);
        if n > available {
            return Err(TrajError::TruncatedHeader { what, offset: self.pos, needed: n, available });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn marker(&mut self, what: &'static str) -> Result<u64, TrajError> {
        let s = self.take(self.marker_bytes, what)?;
        Ok(if self.marker_bytes == 8 { u64_from(s, self.endian) } else { u64::from(u32_from(s, self.endian)) })
    }

    /// A record of any length (header records).
    fn record(&mut self, what: &'static str) -> Result<&'a [u8], TrajError> {
        let offset = self.pos;
        let len = self.marker(what)?;
        self.record_body(usize::try_from(len).unwrap_or(usize::MAX), what, offset)
    }

    /// A record of a known length (frame records; the caller has checked the bytes are there).
    fn record_of(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], TrajError> {
        let offset = self.pos;
        let start = self.marker(what)?;
        if start != len as u64 {
            return Err(TrajError::BadRecord {
                what,
                offset,
                message: format!("length marker {start}, expected {len}"),
            });
        }
        self.record_body(len, what, offset)
    }

    /// The payload of a record whose leading marker said `len`, and its trailing marker.
    fn record_body(&mut self, len: usize, what: &'static str, offset: usize) -> Result<&'a [u8], TrajError> {
        let payload = self.take(len, what)?;
        let end = self.marker(what)?;
        if end != len as u64 {
            return Err(TrajError::BadRecord {
                what,
                offset,
                message: format!("trailing marker {end}, expected {len}"),
            });
        }
        Ok(payload)
    }
}

fn u32_from(s: &[u8], endian: Endian) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[..4]);
    match endian {
        Endian::Little => u32::from_le_bytes(b),
        Endian::Big => u32::from_be_bytes(b),
    }
}

fn u64_from(s: &[u8], endian: Endian) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[..8]);
    match endian {
        Endian::Little => u64::from_le_bytes(b),
        Endian::Big => u64::from_be_bytes(b),
    }
}

#[allow(clippy::cast_possible_wrap)] // reinterpreting the bits of a Fortran INTEGER
fn i32_from(s: &[u8], endian: Endian) -> i32 {
    u32_from(s, endian) as i32
}

/// Finds the byte order and marker width for which the first record is `[84] … [84]`.
fn detect(bytes: &[u8]) -> Result<(Endian, usize), TrajError> {
    for marker_bytes in [4, 8] {
        for endian in [Endian::Little, Endian::Big] {
            let end = marker_bytes + 84;
            let (Some(head), Some(tail)) = (bytes.get(..marker_bytes), bytes.get(end..end + marker_bytes)) else {
                continue;
            };
            let read = |s: &[u8]| if marker_bytes == 8 { u64_from(s, endian) } else { u64::from(u32_from(s, endian)) };
            if read(head) == 84 && read(tail) == 84 {
                return Ok((endian, marker_bytes));
            }
        }
    }
    let reason = match bytes.get(..4) {
        _ if bytes.len() < 92 => format!("{} bytes, shorter than the first record", bytes.len()),
        Some(head) => format!("the first record is not 84 bytes long in either byte order (marker bytes {head:02x?})"),
        None => "empty input".to_owned(),
    };
    Err(TrajError::NotDcd { reason })
}

fn parse_header(bytes: &[u8]) -> Result<DcdHeader, TrajError> {
    let (endian, marker_bytes) = detect(bytes)?;
    let mut c = Cursor { bytes, pos: 0, endian, marker_bytes };

    let first = c.record("control record")?;
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&first[..4]);
    if &magic != b"CORD" && &magic != b"VELD" {
        return Err(TrajError::NotDcd { reason: format!("magic {magic:02x?}, expected \"CORD\" or \"VELD\"") });
    }
    let mut icntrl = [0i32; 20];
    for (k, word) in icntrl.iter_mut().enumerate() {
        *word = i32_from(&first[4 + 4 * k..], endian);
    }
    let word = |k: usize| &first[4 + 4 * k..];
    let charmm_version = (icntrl[19] != 0).then_some(icntrl[19]);
    let (timestep, has_unit_cell, has_4d) = if charmm_version.is_some() {
        (f32::from_bits(u32_from(word(9), endian)), icntrl[10] != 0, icntrl[11] != 0)
    } else {
        // X-PLOR: the timestep is a double across ICNTRL[9..11]; no cell, no 4D.
        #[allow(clippy::cast_possible_truncation)]
        let dt = f64::from_bits(u64_from(word(9), endian)) as f32;
        (dt, false, false)
    };

    let title_rec = c.record("title record")?;
    if title_rec.len() < 4 {
        return Err(TrajError::BadRecord {
            what: "title record",
            offset: c.pos - title_rec.len() - 2 * marker_bytes,
            message: format!("{} bytes, too short for NTITLE", title_rec.len()),
        });
    }
    let ntitle = i32_from(title_rec, endian);
    let Ok(ntitle) = usize::try_from(ntitle) else {
        return Err(TrajError::InvalidHeader(format!("NTITLE = {ntitle}")));
    };
    let title = title_rec[4..]
        .chunks(80)
        .take(ntitle)
        .map(|line| String::from_utf8_lossy(line).trim_end_matches([' ', '\0']).to_owned())
        .collect();

    let atom_rec = c.record("NATOM record")?;
    if atom_rec.len() != 4 {
        return Err(TrajError::BadRecord {
            what: "NATOM record",
            offset: c.pos - atom_rec.len() - 2 * marker_bytes,
            message: format!("{} bytes, expected 4", atom_rec.len()),
        });
    }
    let natom = i32_from(atom_rec, endian);
    let Ok(atoms) = usize::try_from(natom) else {
        return Err(TrajError::InvalidHeader(format!("NATOM = {natom}")));
    };
    match icntrl[8] {
        0 => {}
        n if n < 0 => return Err(TrajError::InvalidHeader(format!("{n} fixed atoms (ICNTRL[8])"))),
        n => {
            return Err(TrajError::Unsupported(format!(
                "{n} of {atoms} atoms are fixed (ICNTRL[8]): frames after the first hold only the free atoms"
            )));
        }
    }

    let too_large = || TrajError::InvalidHeader(format!("NATOM = {atoms} is too large"));
    let coord_record = atoms.checked_mul(4).and_then(|b| b.checked_add(2 * marker_bytes)).ok_or_else(too_large)?;
    let records = if has_4d { 4 } else { 3 };
    let mut frame_bytes = coord_record.checked_mul(records).ok_or_else(too_large)?;
    if has_unit_cell {
        frame_bytes = frame_bytes.checked_add(48 + 2 * marker_bytes).ok_or_else(too_large)?;
    }

    Ok(DcdHeader {
        endian,
        marker_bytes,
        magic,
        icntrl,
        nset: icntrl[0],
        istart: icntrl[1],
        nsavc: icntrl[2],
        nstep: icntrl[3],
        charmm_version,
        has_unit_cell,
        has_4d,
        timestep,
        title,
        atoms,
        data_offset: c.pos,
        frame_bytes,
    })
}

/// Parses the frame at `offset`; the caller has checked that `frame_bytes` bytes are there.
fn parse_frame(bytes: &[u8], h: &DcdHeader, offset: usize) -> Result<DcdFrame, TrajError> {
    let mut c = Cursor { bytes, pos: offset, endian: h.endian, marker_bytes: h.marker_bytes };
    let unit_cell = if h.has_unit_cell {
        let rec = c.record_of(48, "unit-cell record")?;
        let mut cell = [0f64; 6];
        for (k, v) in cell.iter_mut().enumerate() {
            *v = f64::from_bits(u64_from(&rec[8 * k..], h.endian));
        }
        Some(cell)
    } else {
        None
    };
    let len = h.atoms * 4; // checked in parse_header
    let x = c.record_of(len, "X record")?;
    let y = c.record_of(len, "Y record")?;
    let z = c.record_of(len, "Z record")?;
    if h.has_4d {
        c.record_of(len, "W record")?;
    }
    let f = match h.endian {
        Endian::Little => |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        Endian::Big => |c: &[u8]| f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
    };
    let positions = x
        .chunks_exact(4)
        .zip(y.chunks_exact(4))
        .zip(z.chunks_exact(4))
        .map(|((x, y), z)| Vec3::new(f(x), f(y), f(z)))
        .collect();
    Ok(DcdFrame { positions, unit_cell })
}
