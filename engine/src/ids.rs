//! Typed indices. Each is a `u32` newtype so an atom index can never be passed where a residue
//! index is expected, and so they fit GPU buffers without conversion.

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default,
            bytemuck::Pod, bytemuck::Zeroable,
        )]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as a `usize` index into the columns it refers to.
            #[inline]
            #[must_use]
            pub const fn index(self) -> usize {
                self.0 as usize
            }

            /// Builds an id from a column index.
            ///
            /// # Panics
            /// If `index` does not fit in `u32`; the loaders refuse structures that large
            /// before any id is made, so this is a programming error.
            #[inline]
            #[must_use]
            pub fn from_index(index: usize) -> Self {
                Self(u32::try_from(index).expect(concat!(stringify!($name), " overflows u32")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}#{}", stringify!($name), self.0)
            }
        }
    };
}

typed_id!(
    /// An atom of a topology: an index into its atom columns, stable while the complex lives.
    AtomId
);
typed_id!(
    /// A residue of a topology: an index into its residue columns.
    ResidueId
);
typed_id!(
    /// A chain segment of a topology: an index into its chain columns.
    ChainId
);
typed_id!(
    /// A bond of a topology: an index into its bond columns.
    BondId
);
typed_id!(
    /// A complex in a [`crate::Workspace`]; never reused while the workspace lives.
    ComplexId
);
typed_id!(
    /// An interned string of a topology's [`crate::model::StringPool`].
    StrId
);
typed_id!(
    /// A shape (sphere, line, label, mesh) drawn by a plugin; chosen by its sender, unique
    /// within one shape stream (see [`crate::shape`]).
    ShapeId
);
