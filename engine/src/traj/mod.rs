//! Trajectory readers: coordinate frames from molecular-dynamics output, used as test and
//! benchmark input for the stream codec.
//!
//! - [`dcd`]: CHARMM / NAMD / X-PLOR / LAMMPS binary DCD files, read from bytes in pure Rust
//!   ([`read_dcd`] for the whole file, [`DcdReader`] to walk frames one at a time).
//!
//! XTC (GROMACS) is read with the `molly` crate, which is a dev-dependency only: the tests and
//! the benches crate use it directly, and this crate holds no XTC code.
//!
//! Every reader works on untrusted bytes: malformed, truncated or hostile input gives a
//! [`TrajError`], never a panic, and allocations are bounded by the length of the input.

pub mod dcd;

pub use dcd::{Dcd, DcdFrame, DcdHeader, DcdReader, Endian, read_dcd};

/// Why a trajectory could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrajError {
    /// The bytes do not start like the format (for DCD: no record marker of 84 in either byte
    /// order, with 32- or 64-bit markers).
    #[error("not a DCD file: {reason}")]
    NotDcd {
        /// What was found instead.
        reason: String,
    },
    /// The file ends inside the header.
    #[error("truncated header: {what} needs {needed} bytes at offset {offset}, {available} left")]
    TruncatedHeader {
        /// The header part being read.
        what: &'static str,
        /// Byte offset of that part.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// The file ends inside a frame (0-based index of the first incomplete frame).
    #[error("truncated trajectory: frame {frame} is incomplete ({bytes} of {frame_bytes} bytes present)")]
    Truncated {
        /// Index of the incomplete frame.
        frame: usize,
        /// Bytes of it present.
        bytes: usize,
        /// Bytes a complete frame takes.
        frame_bytes: usize,
    },
    /// A Fortran record's leading and trailing length markers disagree, or its length is not the
    /// one this part of the file must have.
    #[error("bad record at offset {offset} ({what}): {message}")]
    BadRecord {
        /// The record being read.
        what: &'static str,
        /// Byte offset of its leading marker.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A header value is out of range.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// A valid file using a feature this reader does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}
