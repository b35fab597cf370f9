//! Chemical elements: symbols, CPK colours, van der Waals and covalent radii, and the guessing
//! of an element from a PDB atom name when a file has no element column.
//!
//! Everything is kept in static tables indexed by atomic number (0 = unknown, 1..=118), so
//! lookups never allocate.
//!
//! Data sources:
//! * colours: Jmol's CPK palette (`argbsCpk`), which covers elements 1..=109; 110..=118 reuse
//!   the colour of meitnerium (109), the last one Jmol defines;
//! * van der Waals radii: Bondi (1964) where Bondi gives one, else Alvarez (2013), else the
//!   values of Jmol's "Babel" set (Mantina et al. 2009 for Po, At, Rn, Fr, Ra; Open Babel's
//!   2.43 Å for Pm, 2.0 Å for Fm and heavier);
//! * covalent radii: Cordero et al. (2008), sp3 for carbon and low-spin for Mn, Fe and Co; the
//!   elements it does not cover (Bk and heavier) use the 1.5 Å default.

/// A chemical element, stored as its atomic number; `Element(0)` is unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Element(pub u8);

/// Number of entries in each table: index 0 (unknown) plus elements 1..=118.
const TABLE_LEN: usize = 119;

/// Element symbols with normal capitalisation, indexed by atomic number ("X" at index 0).
#[rustfmt::skip]
static SYMBOLS: [&str; TABLE_LEN] = [
    "X", //
    "H", "He", //
    "Li", "Be", "B", "C", "N", "O", "F", "Ne", //
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", //
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", //
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te",
    "I", "Xe", //
    "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", //
    "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
    "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Jmol's colour for unknown atoms (deep pink).
const UNKNOWN_COLOR: [u8; 3] = [255, 20, 147];

/// Jmol CPK colours as sRGB bytes, indexed by atomic number.
static CPK_COLORS: [[u8; 3]; TABLE_LEN] = [
    UNKNOWN_COLOR,   // 0 unknown
    [255, 255, 255], // 1 H
    [217, 255, 255], // 2 He
    [204, 128, 255], // 3 Li
    [194, 255, 0],   // 4 Be
    [255, 181, 181], // 5 B
    [144, 144, 144], // 6 C
    [48, 80, 248],   // 7 N
    [255, 13, 13],   // 8 O
    [144, 224, 80],  // 9 F
    [179, 227, 245], // 10 Ne
    [171, 92, 242],  // 11 Na
    [138, 255, 0],   // 12 Mg
    [191, 166, 166], // 13 Al
    [240, 200, 160], // 14 Si
    [255, 128, 0],   // 15 P
    [255, 255, 48],  // 16 S
    [31, 240, 31],   // 17 Cl
    [128, 209, 227], // 18 Ar
    [143, 64, 212],  // 19 K
    [61, 255, 0],    // 20 Ca
    [230, 230, 230], // 21 Sc
    [191, 194, 199], // 22 Ti
    [166, 166, 171], // 23 V
    [138, 153, 199], // 24 Cr
    [156, 122, 199], // 25 Mn
    [224, 102, 51],  // 26 Fe
    [240, 144, 160], // 27 Co
    [80, 208, 80],   // 28 Ni
    [200, 128, 51],  // 29 Cu
    [125, 128, 176], // 30 Zn
    [194, 143, 143], // 31 Ga
    [102, 143, 143], // 32 Ge
    [189, 128, 227], // 33 As
    [255, 161, 0],   // 34 Se
    [166, 41, 41],   // 35 Br
    [92, 184, 209],  // 36 Kr
    [112, 46, 176],  // 37 Rb
    [0, 255, 0],     // 38 Sr
    [148, 255, 255], // 39 Y
    [148, 224, 224], // 40 Zr
    [115, 194, 201], // 41 Nb
    [84, 181, 181],  // 42 Mo
    [59, 158, 158],  // 43 Tc
    [36, 143, 143],  // 44 Ru
    [10, 125, 140],  // 45 Rh
    [0, 105, 133],   // 46 Pd
    [192, 192, 192], // 47 Ag
    [255, 217, 143], // 48 Cd
    [166, 117, 115], // 49 In
    [102, 128, 128], // 50 Sn
    [158, 99, 181],  // 51 Sb
    [212, 122, 0],   // 52 Te
    [148, 0, 148],   // 53 I
    [66, 158, 176],  // 54 Xe
    [87, 23, 143],   // 55 Cs
    [0, 201, 0],     // 56 Ba
    [112, 212, 255], // 57 La
    [255, 255, 199], // 58 Ce
    [217, 255, 199], // 59 Pr
    [199, 255, 199], // 60 Nd
    [163, 255, 199], // 61 Pm
    [143, 255, 199], // 62 Sm
    [97, 255, 199],  // 63 Eu
    [69, 255, 199],  // 64 Gd
    [48, 255, 199],  // 65 Tb
    [31, 255, 199],  // 66 Dy
    [0, 255, 156],   // 67 Ho
    [0, 230, 117],   // 68 Er
    [0, 212, 82],    // 69 Tm
    [0, 191, 56],    // 70 Yb
    [0, 171, 36],    // 71 Lu
    [77, 194, 255],  // 72 Hf
    [77, 166, 255],  // 73 Ta
    [33, 148, 214],  // 74 W
    [38, 125, 171],  // 75 Re
    [38, 102, 150],  // 76 Os
    [23, 84, 135],   // 77 Ir
    [208, 208, 224], // 78 Pt
    [255, 209, 35],  // 79 Au
    [184, 184, 208], // 80 Hg
    [166, 84, 77],   // 81 Tl
    [87, 89, 97],    // 82 Pb
    [158, 79, 181],  // 83 Bi
    [171, 92, 0],    // 84 Po
    [117, 79, 69],   // 85 At
    [66, 130, 150],  // 86 Rn
    [66, 0, 102],    // 87 Fr
    [0, 125, 0],     // 88 Ra
    [112, 171, 250], // 89 Ac
    [0, 186, 255],   // 90 Th
    [0, 161, 255],   // 91 Pa
    [0, 143, 255],   // 92 U
    [0, 128, 255],   // 93 Np
    [0, 107, 255],   // 94 Pu
    [84, 92, 242],   // 95 Am
    [120, 92, 227],  // 96 Cm
    [138, 79, 227],  // 97 Bk
    [161, 54, 212],  // 98 Cf
    [179, 31, 212],  // 99 Es
    [179, 31, 186],  // 100 Fm
    [179, 13, 166],  // 101 Md
    [189, 13, 135],  // 102 No
    [199, 0, 102],   // 103 Lr
    [204, 0, 89],    // 104 Rf
    [209, 0, 79],    // 105 Db
    [217, 0, 69],    // 106 Sg
    [224, 0, 56],    // 107 Bh
    [230, 0, 46],    // 108 Hs
    [235, 0, 38],    // 109 Mt
    // Jmol stops at Mt; the superheavy elements keep its colour.
    [235, 0, 38], // 110 Ds
    [235, 0, 38], // 111 Rg
    [235, 0, 38], // 112 Cn
    [235, 0, 38], // 113 Nh
    [235, 0, 38], // 114 Fl
    [235, 0, 38], // 115 Mc
    [235, 0, 38], // 116 Lv
    [235, 0, 38], // 117 Ts
    [235, 0, 38], // 118 Og
];

/// Van der Waals radius used for unknown atoms, in Å.
const UNKNOWN_VDW_RADIUS: f32 = 2.0;

/// Van der Waals radii in Å, indexed by atomic number.
///
/// Source per entry: B = Bondi 1964, A = Alvarez 2013, M = Mantina et al. 2009 (as in Jmol's
/// Babel set), J = Jmol's Babel set (Open Babel) where no published value exists.
static VDW_RADII: [f32; TABLE_LEN] = [
    UNKNOWN_VDW_RADIUS, // 0 unknown
    1.20,               // 1 H  B
    1.40,               // 2 He B
    1.82,               // 3 Li B
    1.98,               // 4 Be A
    1.91,               // 5 B  A
    1.70,               // 6 C  B
    1.55,               // 7 N  B
    1.52,               // 8 O  B
    1.47,               // 9 F  B
    1.54,               // 10 Ne B
    2.27,               // 11 Na B
    1.73,               // 12 Mg B
    2.25,               // 13 Al A
    2.10,               // 14 Si B
    1.80,               // 15 P  B
    1.80,               // 16 S  B
    1.75,               // 17 Cl B
    1.88,               // 18 Ar B
    2.75,               // 19 K  B
    2.62,               // 20 Ca A
    2.58,               // 21 Sc A
    2.46,               // 22 Ti A
    2.42,               // 23 V  A
    2.45,               // 24 Cr A
    2.45,               // 25 Mn A
    2.44,               // 26 Fe A
    2.40,               // 27 Co A
    1.63,               // 28 Ni B
    1.40,               // 29 Cu B
    1.39,               // 30 Zn B
    1.87,               // 31 Ga B
    2.29,               // 32 Ge A
    1.85,               // 33 As B
    1.90,               // 34 Se B
    1.85,               // 35 Br B
    2.02,               // 36 Kr B
    3.21,               // 37 Rb A
    2.84,               // 38 Sr A
    2.75,               // 39 Y  A
    2.52,               // 40 Zr A
    2.56,               // 41 Nb A
    2.45,               // 42 Mo A
    2.44,               // 43 Tc A
    2.46,               // 44 Ru A
    2.44,               // 45 Rh A
    1.63,               // 46 Pd B
    1.72,               // 47 Ag B
    1.58,               // 48 Cd B
    1.93,               // 49 In B
    2.17,               // 50 Sn B
    2.47,               // 51 Sb A
    2.06,               // 52 Te B
    1.98,               // 53 I  B
    2.16,               // 54 Xe B
    3.48,               // 55 Cs A
    3.03,               // 56 Ba A
    2.98,               // 57 La A
    2.88,               // 58 Ce A
    2.92,               // 59 Pr A
    2.95,               // 60 Nd A
    2.43,               // 61 Pm J
    2.90,               // 62 Sm A
    2.87,               // 63 Eu A
    2.83,               // 64 Gd A
    2.79,               // 65 Tb A
    2.87,               // 66 Dy A
    2.81,               // 67 Ho A
    2.83,               // 68 Er A
    2.79,               // 69 Tm A
    2.80,               // 70 Yb A
    2.74,               // 71 Lu A
    2.63,               // 72 Hf A
    2.53,               // 73 Ta A
    2.57,               // 74 W  A
    2.49,               // 75 Re A
    2.48,               // 76 Os A
    2.41,               // 77 Ir A
    1.72,               // 78 Pt B
    1.66,               // 79 Au B
    1.55,               // 80 Hg B
    1.96,               // 81 Tl B
    2.02,               // 82 Pb B
    2.54,               // 83 Bi A
    1.97,               // 84 Po M
    2.02,               // 85 At M
    2.20,               // 86 Rn M
    3.48,               // 87 Fr M
    2.83,               // 88 Ra M
    2.80,               // 89 Ac A
    2.93,               // 90 Th A
    2.88,               // 91 Pa A
    1.86,               // 92 U  B
    2.82,               // 93 Np A
    2.81,               // 94 Pu A
    2.83,               // 95 Am A
    3.05,               // 96 Cm A
    3.40,               // 97 Bk A
    3.05,               // 98 Cf A
    2.70,               // 99 Es A
    2.00,               // 100 Fm J
    2.00,               // 101 Md J
    2.00,               // 102 No J
    2.00,               // 103 Lr J
    2.00,               // 104 Rf J
    2.00,               // 105 Db J
    2.00,               // 106 Sg J
    2.00,               // 107 Bh J
    2.00,               // 108 Hs J
    2.00,               // 109 Mt J
    2.00,               // 110 Ds default
    2.00,               // 111 Rg default
    2.00,               // 112 Cn default
    2.00,               // 113 Nh default
    2.00,               // 114 Fl default
    2.00,               // 115 Mc default
    2.00,               // 116 Lv default
    2.00,               // 117 Ts default
    2.00,               // 118 Og default
];

/// Covalent radius used for unknown atoms (and elements Cordero et al. do not cover), in Å.
const UNKNOWN_COVALENT_RADIUS: f32 = 1.5;

/// Single-bond covalent radii in Å (Cordero et al. 2008), indexed by atomic number.
static COVALENT_RADII: [f32; TABLE_LEN] = [
    UNKNOWN_COVALENT_RADIUS, // 0 unknown
    0.31,                    // 1 H
    0.28,                    // 2 He
    1.28,                    // 3 Li
    0.96,                    // 4 Be
    0.84,                    // 5 B
    0.76,                    // 6 C (sp3)
    0.71,                    // 7 N
    0.66,                    // 8 O
    0.57,                    // 9 F
    0.58,                    // 10 Ne
    1.66,                    // 11 Na
    1.41,                    // 12 Mg
    1.21,                    // 13 Al
    1.11,                    // 14 Si
    1.07,                    // 15 P
    1.05,                    // 16 S
    1.02,                    // 17 Cl
    1.06,                    // 18 Ar
    2.03,                    // 19 K
    1.76,                    // 20 Ca
    1.70,                    // 21 Sc
    1.60,                    // 22 Ti
    1.53,                    // 23 V
    1.39,                    // 24 Cr
    1.39,                    // 25 Mn (low spin)
    1.32,                    // 26 Fe (low spin)
    1.26,                    // 27 Co (low spin)
    1.24,                    // 28 Ni
    1.32,                    // 29 Cu
    1.22,                    // 30 Zn
    1.22,                    // 31 Ga
    1.20,                    // 32 Ge
    1.19,                    // 33 As
    1.20,                    // 34 Se
    1.20,                    // 35 Br
    1.16,                    // 36 Kr
    2.20,                    // 37 Rb
    1.95,                    // 38 Sr
    1.90,                    // 39 Y
    1.75,                    // 40 Zr
    1.64,                    // 41 Nb
    1.54,                    // 42 Mo
    1.47,                    // 43 Tc
    1.46,                    // 44 Ru
    1.42,                    // 45 Rh
    1.39,                    // 46 Pd
    1.45,                    // 47 Ag
    1.44,                    // 48 Cd
    1.42,                    // 49 In
    1.39,                    // 50 Sn
    1.39,                    // 51 Sb
    1.38,                    // 52 Te
    1.39,                    // 53 I
    1.40,                    // 54 Xe
    2.44,                    // 55 Cs
    2.15,                    // 56 Ba
    2.07,                    // 57 La
    2.04,                    // 58 Ce
    2.03,                    // 59 Pr
    2.01,                    // 60 Nd
    1.99,                    // 61 Pm
    1.98,                    // 62 Sm
    1.98,                    // 63 Eu
    1.96,                    // 64 Gd
    1.94,                    // 65 Tb
    1.92,                    // 66 Dy
    1.92,                    // 67 Ho
    1.89,                    // 68 Er
    1.90,                    // 69 Tm
    1.87,                    // 70 Yb
    1.87,                    // 71 Lu
    1.75,                    // 72 Hf
    1.70,                    // 73 Ta
    1.62,                    // 74 W
    1.51,                    // 75 Re
    1.44,                    // 76 Os
    1.41,                    // 77 Ir
    1.36,                    // 78 Pt
    1.36,                    // 79 Au
    1.32,                    // 80 Hg
    1.45,                    // 81 Tl
    1.46,                    // 82 Pb
    1.48,                    // 83 Bi
    1.40,                    // 84 Po
    1.50,                    // 85 At
    1.50,                    // 86 Rn
    2.60,                    // 87 Fr
    2.21,                    // 88 Ra
    2.15,                    // 89 Ac
    2.06,                    // 90 Th
    2.00,                    // 91 Pa
    1.96,                    // 92 U
    1.90,                    // 93 Np
    1.87,                    // 94 Pu
    1.80,                    // 95 Am
    1.69,                    // 96 Cm
    // Cordero et al. stop at curium.
    UNKNOWN_COVALENT_RADIUS, // 97 Bk
    UNKNOWN_COVALENT_RADIUS, // 98 Cf
    UNKNOWN_COVALENT_RADIUS, // 99 Es
    UNKNOWN_COVALENT_RADIUS, // 100 Fm
    UNKNOWN_COVALENT_RADIUS, // 101 Md
    UNKNOWN_COVALENT_RADIUS, // 102 No
    UNKNOWN_COVALENT_RADIUS, // 103 Lr
    UNKNOWN_COVALENT_RADIUS, // 104 Rf
    UNKNOWN_COVALENT_RADIUS, // 105 Db
    UNKNOWN_COVALENT_RADIUS, // 106 Sg
    UNKNOWN_COVALENT_RADIUS, // 107 Bh
    UNKNOWN_COVALENT_RADIUS, // 108 Hs
    UNKNOWN_COVALENT_RADIUS, // 109 Mt
    UNKNOWN_COVALENT_RADIUS, // 110 Ds
    UNKNOWN_COVALENT_RADIUS, // 111 Rg
    UNKNOWN_COVALENT_RADIUS, // 112 Cn
    UNKNOWN_COVALENT_RADIUS, // 113 Nh
    UNKNOWN_COVALENT_RADIUS, // 114 Fl
    UNKNOWN_COVALENT_RADIUS, // 115 Mc
    UNKNOWN_COVALENT_RADIUS, // 116 Lv
    UNKNOWN_COVALENT_RADIUS, // 117 Ts
    UNKNOWN_COVALENT_RADIUS, // 118 Og
];

impl Element {
    /// Unknown element (atomic number 0): symbol "X", default colour and radii.
    pub const UNKNOWN: Element = Element(0);
    /// Hydrogen.
    pub const H: Element = Element(1);
    /// Helium.
    pub const HE: Element = Element(2);
    /// Lithium.
    pub const LI: Element = Element(3);
    /// Beryllium.
    pub const BE: Element = Element(4);
    /// Boron.
    pub const B: Element = Element(5);
    /// Carbon.
    pub const C: Element = Element(6);
    /// Nitrogen.
    pub const N: Element = Element(7);
    /// Oxygen.
    pub const O: Element = Element(8);
    /// Fluorine.
    pub const F: Element = Element(9);
    /// Neon.
    pub const NE: Element = Element(10);
    /// Sodium.
    pub const NA: Element = Element(11);
    /// Magnesium.
    pub const MG: Element = Element(12);
    /// Aluminium.
    pub const AL: Element = Element(13);
    /// Silicon.
    pub const SI: Element = Element(14);
    /// Phosphorus.
    pub const P: Element = Element(15);
    /// Sulfur.
    pub const S: Element = Element(16);
    /// Chlorine.
    pub const CL: Element = Element(17);
    /// Argon.
    pub const AR: Element = Element(18);
    /// Potassium.
    pub const K: Element = Element(19);
    /// Calcium.
    pub const CA: Element = Element(20);
    /// Chromium.
    pub const CR: Element = Element(24);
    /// Manganese.
    pub const MN: Element = Element(25);
    /// Iron.
    pub const FE: Element = Element(26);
    /// Cobalt.
    pub const CO: Element = Element(27);
    /// Nickel.
    pub const NI: Element = Element(28);
    /// Copper.
    pub const CU: Element = Element(29);
    /// Zinc.
    pub const ZN: Element = Element(30);
    /// Arsenic.
    pub const AS: Element = Element(33);
    /// Selenium.
    pub const SE: Element = Element(34);
    /// Bromine.
    pub const BR: Element = Element(35);
    /// Krypton.
    pub const KR: Element = Element(36);
    /// Rubidium.
    pub const RB: Element = Element(37);
    /// Strontium.
    pub const SR: Element = Element(38);
    /// Molybdenum.
    pub const MO: Element = Element(42);
    /// Palladium.
    pub const PD: Element = Element(46);
    /// Silver.
    pub const AG: Element = Element(47);
    /// Cadmium.
    pub const CD: Element = Element(48);
    /// Iodine.
    pub const I: Element = Element(53);
    /// Xenon.
    pub const XE: Element = Element(54);
    /// Caesium.
    pub const CS: Element = Element(55);
    /// Barium.
    pub const BA: Element = Element(56);
    /// Tungsten.
    pub const W: Element = Element(74);
    /// Platinum.
    pub const PT: Element = Element(78);
    /// Gold.
    pub const AU: Element = Element(79);
    /// Mercury.
    pub const HG: Element = Element(80);
    /// Lead.
    pub const PB: Element = Element(82);
    /// Uranium.
    pub const U: Element = Element(92);

    /// Parse an element symbol, case-insensitive, surrounding whitespace ignored. "D" and "T"
    /// (deuterium/tritium) map to H. Returns None for anything else unknown (empty, "X",
    /// digits...).
    #[must_use]
    pub fn from_symbol(s: &str) -> Option<Element> {
        let bytes = s.trim().as_bytes();
        match bytes {
            [b'D' | b'd' | b'T' | b't'] => Some(Element::H),
            [a] | [a, _] if a.is_ascii_alphabetic() => lookup_symbol(bytes),
            _ => None,
        }
    }

    /// Symbol with normal capitalisation ("C", "Cl", "Zn"); "X" for unknown.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        SYMBOLS.get(usize::from(self.0)).copied().unwrap_or(SYMBOLS[0])
    }

    /// The atomic number (0 for unknown).
    #[must_use]
    pub const fn atomic_number(self) -> u8 {
        self.0
    }

    /// Whether this is hydrogen (deuterium and tritium included, as they parse to H).
    #[must_use]
    pub const fn is_hydrogen(self) -> bool {
        self.0 == Element::H.0
    }

    /// Jmol CPK colour as sRGB bytes; unknown -> Jmol's default pink/magenta (255, 20, 147).
    ///
    /// Elements beyond Jmol's table (Ds..Og) use the colour of meitnerium.
    #[must_use]
    pub fn cpk_color(self) -> [u8; 3] {
        CPK_COLORS.get(usize::from(self.0)).copied().unwrap_or(UNKNOWN_COLOR)
    }

    /// Van der Waals radius in Å (Bondi 1964 where available, else Alvarez 2013 / the values
    /// Jmol or `RasMol` use); unknown -> 2.0.
    ///
    /// Gaps in both Bondi and Alvarez are filled from Jmol's Babel set: Mantina et al. (2009)
    /// for Po, At, Rn, Fr and Ra, 2.43 Å for Pm and 2.0 Å for Fm and heavier.
    #[must_use]
    pub fn vdw_radius(self) -> f32 {
        VDW_RADII.get(usize::from(self.0)).copied().unwrap_or(UNKNOWN_VDW_RADIUS)
    }

    /// Single-bond covalent radius in Å (Cordero et al. 2008; for C use sp3 0.76); unknown -> 1.5.
    ///
    /// Mn, Fe and Co use the low-spin values; elements Cordero et al. do not cover (Bk and
    /// heavier) use the 1.5 Å default.
    #[must_use]
    pub fn covalent_radius(self) -> f32 {
        COVALENT_RADII.get(usize::from(self.0)).copied().unwrap_or(UNKNOWN_COVALENT_RADIUS)
    }

    /// Guess the element from a PDB atom name when the element column (77-78) is missing, as MD
    /// programs write it.
    ///
    /// `raw_name` is columns 13-16 as they appear in the file (may include leading space, length
    /// 0..=4), `res_name` the residue name (trimmed). Column alignment (rule 3 below) is only
    /// read from a full four-character field; shorter or already-trimmed names (mmCIF atom
    /// names, truncated lines) are judged by their letters alone.
    ///
    /// The rules, in order:
    /// 1. Single-atom ion residues: when the name, stripped of digits, charges and whitespace,
    ///    equals the residue name stripped the same way ("NA"/"NA", "CL-"/"CL", "ZN"/"ZN2",
    ///    "K"/"K") and is a symbol, that element. CHARMM ion names map to their element when
    ///    the residue is that ion, or a generic "ION" residue: SOD -> Na, CLA -> Cl, POT -> K,
    ///    CAL -> Ca, CES -> Cs, LIT -> Li, RUB -> Rb, BAR -> Ba, ZN2 -> Zn, CD2 -> Cd.
    /// 2. In the standard amino acids (and their force-field protonation and terminal variants),
    ///    nucleotides, capping groups and water, a two-letter element is never chosen: the first
    ///    letter decides ("CA" is carbon, "HG"/"HD1" hydrogen, "NE2" nitrogen, "OW" oxygen).
    /// 3. Elsewhere, the PDB convention that two-letter elements start in column 13: a name
    ///    shorter than four characters that starts in column 13 with a metal, metalloid or
    ///    halogen symbol ("FE  ", "CL1 ", "ZN  ") is that element. For symbols whose first letter
    ///    is itself a common organic element (Ca, Na, Cd, Hg, Co, ...) the rest of the name must
    ///    not contain letters, and mercury needs the name to be exactly "HG".
    /// 4. Because MD programs often lose that alignment: names whose first letter is not an
    ///    element ("ZN", "MG", "MN1", "AU") use the two-letter element; names starting with
    ///    CL, BR or FE are chlorine, bromine and iron; names that are exactly SE, CU, NI, CO,
    ///    SI, PD, PT or IR plus digits are those elements.
    /// 5. Otherwise the first letter of the name ("1HB" -> H, "OW" -> O, "C1'" -> C, "D" ->
    ///    H for deuterium), or [`Element::UNKNOWN`] when it is not an element ("MW", "LP1").
    #[must_use]
    pub fn guess_from_atom_name(raw_name: &str, res_name: &str) -> Element {
        let name = raw_name.trim();
        let letters = Letters::all(name);
        let Some(&first) = letters.as_bytes().first() else {
            return Element::UNKNOWN;
        };
        let res = res_name.trim();
        if !is_standard_residue(res) {
            let guess = guess_ion(name, letters, res)
                .or_else(|| guess_from_pdb_columns(raw_name, name))
                .or_else(|| guess_two_letter_name(name));
            if let Some(e) = guess {
                return e;
            }
        }
        single_letter_element(first).unwrap_or(Element::UNKNOWN)
    }
}

/// Looks up a one- or two-letter symbol (any case) in the table; index 0 ("X") never matches.
fn lookup_symbol(bytes: &[u8]) -> Option<Element> {
    SYMBOLS
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, sym)| sym.as_bytes().eq_ignore_ascii_case(bytes))
        .and_then(|(z, _)| u8::try_from(z).ok())
        .map(Element)
}

/// The element an atom name's first letter stands for on its own: the one-letter symbols, and D
/// for deuterium. (T is not taken as tritium here: no force field names atoms that way.)
fn single_letter_element(letter: u8) -> Option<Element> {
    match letter.to_ascii_uppercase() {
        b'D' => Some(Element::H),
        b'T' => None,
        l => lookup_symbol(&[l]),
    }
}

/// Up to eight ASCII letters taken from a name, upper-cased; everything else is dropped.
#[derive(Clone, Copy)]
struct Letters {
    buf: [u8; 8],
    len: usize,
}

impl Letters {
    /// All ASCII letters of `s`, in order (digits, whitespace, primes, charges removed).
    fn all(s: &str) -> Self {
        let mut out = Letters { buf: [0; 8], len: 0 };
        for b in s.bytes().filter(u8::is_ascii_alphabetic) {
            if out.len == out.buf.len() {
                break;
            }
            out.buf[out.len] = b.to_ascii_uppercase();
            out.len += 1;
        }
        out
    }

    /// The first run of consecutive ASCII letters of `s`, upper-cased ("1HG2" -> "HG").
    fn leading_run(s: &str) -> Self {
        let mut out = Letters { buf: [0; 8], len: 0 };
        for b in s.bytes().skip_while(|b| !b.is_ascii_alphabetic()) {
            if !b.is_ascii_alphabetic() || out.len == out.buf.len() {
                break;
            }
            out.buf[out.len] = b.to_ascii_uppercase();
            out.len += 1;
        }
        out
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Residue names in which a two-letter element is never guessed: the 20 standard amino acids
/// with common force-field protonation variants, caps, nucleotides and water models.
#[rustfmt::skip]
static STANDARD_RESIDUES: &[&str] = &[
    // Amino acids.
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET",
    "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL", "ASX", "GLX", "UNK",
    // Protonation states and variants (AMBER, CHARMM, GROMOS, OPLS).
    "HID", "HIE", "HIP", "HSD", "HSE", "HSP", "HISD", "HISE", "HISH", "HISP", "HIS1", "HIS2",
    "HISA", "HISB", "CYX", "CYM", "CYN", "CYS2", "CYSH", "CYX2", "ASH", "ASPH", "ASPP", "GLH",
    "GLUH", "GLUP", "LYN", "LYSH", "LSN", "LYSN", "ARGN",
    // Caps.
    "ACE", "NME", "NMA", "NH2", "NHE",
    // Nucleotides.
    "A", "C", "G", "U", "T", "I", "N", "DA", "DC", "DG", "DT", "DU", "DI", "DN", "RA", "RC", "RG",
    "RU", "ADE", "CYT", "GUA", "THY", "URA",
    // Water.
    "HOH", "WAT", "SOL", "H2O", "DOD", "D2O", "TIP", "TIP3", "TIP4", "TIP5", "T3P", "T4P", "T5P",
    "TP3", "TP4", "TP5", "SPC", "SPCE", "OPC",
];

/// Whether `res` is an amino acid, nucleotide or water residue (see [`STANDARD_RESIDUES`]),
/// including the AMBER terminal forms ("NALA", "CLYS", "DA5", "RU3").
fn is_standard_residue(res: &str) -> bool {
    let listed = |r: &str| STANDARD_RESIDUES.iter().any(|s| s.eq_ignore_ascii_case(r));
    if listed(res) {
        return true;
    }
    match res.as_bytes() {
        // AMBER N-/C-terminal amino acids: NALA, CALA, NHIE, ...
        [b'N' | b'n' | b'C' | b'c', rest @ ..] if rest.len() == 3 => std::str::from_utf8(rest).is_ok_and(listed),
        // AMBER 5'/3'-terminal and free nucleotides: DA5, DA3, DAN, RU5, ...
        [b'D' | b'd' | b'R' | b'r', base, b'5' | b'3' | b'N' | b'n'] => {
            matches!(base.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T' | b'U' | b'I')
        }
        _ => false,
    }
}

/// CHARMM ion residue/atom names and their elements.
static CHARMM_IONS: [(&str, Element); 10] = [
    ("SOD", Element::NA),
    ("CLA", Element::CL),
    ("POT", Element::K),
    ("CAL", Element::CA),
    ("CES", Element::CS),
    ("LIT", Element::LI),
    ("RUB", Element::RB),
    ("BAR", Element::BA),
    ("ZN2", Element::ZN),
    ("CD2", Element::CD),
];

/// Rule 1: single-atom ion residues ("NA"/"NA", "SOD"/"SOD", "ZN"/"ZN2", "NA+"/"ION").
fn guess_ion(name: &str, letters: Letters, res: &str) -> Option<Element> {
    let container = ["ION", "IONS"].iter().any(|c| c.eq_ignore_ascii_case(res));
    for &(ion, element) in &CHARMM_IONS {
        let residue_is_ion = container || ion.eq_ignore_ascii_case(res);
        if residue_is_ion
            && (ion.eq_ignore_ascii_case(name) || element.symbol().as_bytes().eq_ignore_ascii_case(letters.as_bytes()))
        {
            return Some(element);
        }
    }
    let same_as_residue = name.eq_ignore_ascii_case(res) || letters.as_bytes() == Letters::all(res).as_bytes();
    if (container || same_as_residue) && letters.len <= 2 {
        return lookup_symbol(letters.as_bytes());
    }
    None
}

/// Two-letter elements that turn up in structures outside the organic set: metals, metalloids,
/// halogens and noble gases. Deliberately left out are symbols that read as ordinary organic
/// atom names (He, Ho, Hf, Ne, Nb, Nd, No, Np, Ce, Cf, Cm, Cn, Pa, Po, Pm, Pr, Pu, Sg, ...)
/// and the superheavy elements.
static TYPICAL_INORGANIC: [Element; 62] = [
    Element(3),  // Li
    Element(4),  // Be
    Element(11), // Na
    Element(12), // Mg
    Element(13), // Al
    Element(14), // Si
    Element(17), // Cl
    Element(18), // Ar
    Element(20), // Ca
    Element(21), // Sc
    Element(22), // Ti
    Element(24), // Cr
    Element(25), // Mn
    Element(26), // Fe
    Element(27), // Co
    Element(28), // Ni
    Element(29), // Cu
    Element(30), // Zn
    Element(31), // Ga
    Element(32), // Ge
    Element(33), // As
    Element(34), // Se
    Element(35), // Br
    Element(36), // Kr
    Element(37), // Rb
    Element(38), // Sr
    Element(40), // Zr
    Element(42), // Mo
    Element(43), // Tc
    Element(44), // Ru
    Element(45), // Rh
    Element(46), // Pd
    Element(47), // Ag
    Element(48), // Cd
    Element(49), // In
    Element(50), // Sn
    Element(51), // Sb
    Element(52), // Te
    Element(54), // Xe
    Element(55), // Cs
    Element(56), // Ba
    Element(57), // La
    Element(62), // Sm
    Element(63), // Eu
    Element(64), // Gd
    Element(65), // Tb
    Element(66), // Dy
    Element(68), // Er
    Element(69), // Tm
    Element(70), // Yb
    Element(71), // Lu
    Element(73), // Ta
    Element(75), // Re
    Element(76), // Os
    Element(77), // Ir
    Element(78), // Pt
    Element(79), // Au
    Element(80), // Hg
    Element(81), // Tl
    Element(82), // Pb
    Element(83), // Bi
    Element(90), // Th
];

/// First letters of atom names that usually denote a one-letter organic element.
fn is_organic_letter(letter: u8) -> bool {
    matches!(letter.to_ascii_uppercase(), b'H' | b'C' | b'N' | b'O' | b'P' | b'S')
}

/// Rule 3: the PDB convention that names of two-letter elements start in column 13.
fn guess_from_pdb_columns(raw_name: &str, name: &str) -> Option<Element> {
    let raw = raw_name.as_bytes();
    // Alignment only means something in the full, untrimmed four-column field: an already
    // trimmed name (from mmCIF, say) always "starts in column 13".
    if raw.len() < 4 {
        return None;
    }
    let (c0, c1) = (raw[0], raw[1]);
    // Four-character names start in column 13 whatever their element, so only shorter names
    // carry information in their position.
    if !c0.is_ascii_alphabetic() || !c1.is_ascii_alphabetic() || name.len() >= 4 {
        return None;
    }
    let element = lookup_symbol(&[c0, c1])?;
    if !TYPICAL_INORGANIC.contains(&element) {
        return None;
    }
    let rest = &raw[2..];
    if element == Element::HG && !rest.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if is_organic_letter(c0) && element != Element::CL && rest.iter().any(u8::is_ascii_alphabetic) {
        return None;
    }
    Some(element)
}

/// Rule 4: two-letter elements recognisable from the name alone, whatever its alignment.
fn guess_two_letter_name(name: &str) -> Option<Element> {
    let lead = Letters::leading_run(name);
    let [c0, c1, ..] = *lead.as_bytes() else {
        return None;
    };
    let element = lookup_symbol(&[c0, c1])?;
    if single_letter_element(c0).is_none() {
        // "ZN", "MG", "MN1": read letter by letter the name would be no element at all.
        return TYPICAL_INORGANIC.contains(&element).then_some(element);
    }
    if [Element::CL, Element::BR, Element::FE].contains(&element) {
        return Some(element);
    }
    let exact = [
        Element::SE,
        Element::CU,
        Element::NI,
        Element::CO,
        Element::SI,
        Element::PD,
        Element::PT,
        Element(77), // Ir
    ];
    // The two letters must be the name's only letters: "SE", "CU1" but not "SEA" or "CO2A".
    let only_letters = lead.len == 2 && Letters::all(name).len == 2;
    (only_letters && exact.contains(&element)).then_some(element)
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn guess(raw: &str, res: &str) -> &'static str {
        Element::guess_from_atom_name(raw, res).symbol()
    }

    #[test]
    fn tables_cover_all_118_elements() {
        assert_eq!(SYMBOLS.len(), 119);
        assert_eq!(Element(118).symbol(), "Og");
        assert_eq!(Element(110).symbol(), "Ds");
        assert_eq!(Element(26).symbol(), "Fe");
        assert_eq!(Element(92).symbol(), "U");
        for z in 1..=118u8 {
            let e = Element(z);
            let sym = e.symbol();
            assert!((1..=2).contains(&sym.len()), "{z}: {sym}");
            let mut chars = sym.chars();
            assert!(chars.next().is_some_and(|c| c.is_ascii_uppercase()), "{sym}");
            assert!(chars.all(|c| c.is_ascii_lowercase()), "{sym}");
            let vdw = e.vdw_radius();
            let cov = e.covalent_radius();
            assert!(vdw.is_finite() && (1.0..=3.6).contains(&vdw), "{sym} vdW {vdw}");
            assert!(cov.is_finite() && (0.2..=2.7).contains(&cov), "{sym} covalent {cov}");
            // Bondi's uranium radius (1.86 Å) is smaller than Cordero's covalent one (1.96 Å).
            assert!(cov < vdw || e == Element::U, "{sym}: covalent {cov} >= vdW {vdw}");
            if z <= 109 {
                assert_ne!(e.cpk_color(), UNKNOWN_COLOR, "{sym}");
            }
        }
        for (i, a) in SYMBOLS.iter().enumerate() {
            for b in &SYMBOLS[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "duplicate symbol {a}");
            }
        }
    }

    #[test]
    fn every_symbol_round_trips() {
        for z in 1..=118u8 {
            let e = Element(z);
            let sym = e.symbol();
            assert_eq!(Element::from_symbol(sym), Some(e), "{sym}");
            assert_eq!(Element::from_symbol(&sym.to_ascii_uppercase()), Some(e), "{sym}");
            assert_eq!(Element::from_symbol(&sym.to_ascii_lowercase()), Some(e), "{sym}");
            assert_eq!(Element::from_symbol(&format!("  {sym}\t")), Some(e), "{sym}");
            assert_eq!(e.atomic_number(), z);
        }
    }

    #[test]
    fn from_symbol_special_cases() {
        assert_eq!(Element::from_symbol("D"), Some(Element::H));
        assert_eq!(Element::from_symbol("t"), Some(Element::H));
        assert_eq!(Element::from_symbol(" cL"), Some(Element::CL));
        assert_eq!(Element::from_symbol("ZN"), Some(Element::ZN));
        assert_eq!(Element::from_symbol("Og"), Some(Element(118)));
        for bad in ["", "  ", "X", "x", "Xx", "1", "12", "C1", "1C", "Q", "Abc", "Uuo", "é", "C'"] {
            assert_eq!(Element::from_symbol(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unknown_and_out_of_range() {
        for e in [Element::UNKNOWN, Element::default(), Element(119), Element(255)] {
            assert_eq!(e.symbol(), "X");
            assert_eq!(e.cpk_color(), [255, 20, 147]);
            assert_eq!(e.vdw_radius(), 2.0);
            assert_eq!(e.covalent_radius(), 1.5);
            assert!(!e.is_hydrogen());
        }
        assert_eq!(Element::default(), Element::UNKNOWN);
    }

    #[test]
    fn reference_values() {
        assert_eq!(Element::H.cpk_color(), [255, 255, 255]);
        assert_eq!(Element::C.cpk_color(), [144, 144, 144]);
        assert_eq!(Element::N.cpk_color(), [48, 80, 248]);
        assert_eq!(Element::O.cpk_color(), [255, 13, 13]);
        assert_eq!(Element::S.cpk_color(), [255, 255, 48]);
        assert_eq!(Element::P.cpk_color(), [255, 128, 0]);
        assert_eq!(Element::FE.cpk_color(), [224, 102, 51]);
        assert_eq!(Element::ZN.cpk_color(), [125, 128, 176]);
        assert_eq!(Element::CL.cpk_color(), [31, 240, 31]);
        assert_eq!(Element(109).cpk_color(), [235, 0, 38]);

        assert_eq!(Element::H.vdw_radius(), 1.20);
        assert_eq!(Element::C.vdw_radius(), 1.70);
        assert_eq!(Element::N.vdw_radius(), 1.55);
        assert_eq!(Element::O.vdw_radius(), 1.52);
        assert_eq!(Element::S.vdw_radius(), 1.80);
        assert_eq!(Element::P.vdw_radius(), 1.80);
        assert_eq!(Element::ZN.vdw_radius(), 1.39);
        assert_eq!(Element::FE.vdw_radius(), 2.44); // Alvarez: no Bondi value

        assert_eq!(Element::H.covalent_radius(), 0.31);
        assert_eq!(Element::C.covalent_radius(), 0.76);
        assert_eq!(Element::N.covalent_radius(), 0.71);
        assert_eq!(Element::O.covalent_radius(), 0.66);
        assert_eq!(Element::S.covalent_radius(), 1.05);
        assert_eq!(Element::FE.covalent_radius(), 1.32);

        assert!(Element::H.is_hydrogen());
        assert!(!Element::HE.is_hydrogen());
    }

    #[test]
    fn named_constants_match_symbols() {
        let pairs = [
            (Element::H, "H"),
            (Element::C, "C"),
            (Element::N, "N"),
            (Element::O, "O"),
            (Element::F, "F"),
            (Element::P, "P"),
            (Element::S, "S"),
            (Element::CL, "Cl"),
            (Element::BR, "Br"),
            (Element::I, "I"),
            (Element::NA, "Na"),
            (Element::MG, "Mg"),
            (Element::K, "K"),
            (Element::CA, "Ca"),
            (Element::FE, "Fe"),
            (Element::ZN, "Zn"),
            (Element::SE, "Se"),
            (Element::CU, "Cu"),
            (Element::MN, "Mn"),
            (Element::HE, "He"),
            (Element::LI, "Li"),
            (Element::BE, "Be"),
            (Element::B, "B"),
            (Element::NE, "Ne"),
            (Element::AL, "Al"),
            (Element::SI, "Si"),
            (Element::AR, "Ar"),
            (Element::CR, "Cr"),
            (Element::CO, "Co"),
            (Element::NI, "Ni"),
            (Element::AS, "As"),
            (Element::KR, "Kr"),
            (Element::RB, "Rb"),
            (Element::SR, "Sr"),
            (Element::MO, "Mo"),
            (Element::PD, "Pd"),
            (Element::AG, "Ag"),
            (Element::CD, "Cd"),
            (Element::XE, "Xe"),
            (Element::CS, "Cs"),
            (Element::BA, "Ba"),
            (Element::W, "W"),
            (Element::PT, "Pt"),
            (Element::AU, "Au"),
            (Element::HG, "Hg"),
            (Element::PB, "Pb"),
            (Element::U, "U"),
        ];
        for (e, sym) in pairs {
            assert_eq!(e.symbol(), sym);
        }
    }

    #[test]
    fn guess_protein_atoms() {
        // Columns 13-16 as written by PDB, GROMACS, CHARMM and AMBER.
        assert_eq!(guess(" CA ", "ALA"), "C");
        assert_eq!(guess("CA", "ALA"), "C");
        assert_eq!(guess(" N  ", "GLY"), "N");
        assert_eq!(guess(" OG ", "SER"), "O");
        assert_eq!(guess(" SG ", "CYS"), "S");
        assert_eq!(guess(" SD ", "MET"), "S");
        assert_eq!(guess(" NE ", "ARG"), "N");
        assert_eq!(guess(" NE2", "HIS"), "N");
        assert_eq!(guess(" CD1", "LEU"), "C");
        assert_eq!(guess(" HG ", "CYS"), "H");
        assert_eq!(guess("HG  ", "CYS"), "H");
        assert_eq!(guess(" HD1", "HIS"), "H");
        assert_eq!(guess("HD11", "LEU"), "H");
        assert_eq!(guess("HG21", "THR"), "H");
        assert_eq!(guess("HE21", "GLN"), "H");
        assert_eq!(guess("1HB ", "ALA"), "H");
        assert_eq!(guess("2HG1", "ILE"), "H");
        assert_eq!(guess(" HB1", "ALA"), "H");
        assert_eq!(guess(" H  ", "HSD"), "H");
        assert_eq!(guess(" CD ", "HIE"), "C");
        assert_eq!(guess(" CA ", "NALA"), "C");
        assert_eq!(guess(" OC1", "CLYS"), "O");
        assert_eq!(guess(" OXT", "LYS"), "O");
        assert_eq!(guess("HH31", "ACE"), "H");
        assert_eq!(guess(" CH3", "NME"), "C");
        // Deuterium in neutron structures.
        assert_eq!(guess(" D  ", "ALA"), "H");
        assert_eq!(guess(" DG1", "SER"), "H");
    }

    #[test]
    fn guess_nucleic_and_water() {
        assert_eq!(guess(" C1'", "DA"), "C");
        assert_eq!(guess(" P  ", "DG"), "P");
        assert_eq!(guess(" OP1", "U"), "O");
        assert_eq!(guess(" O5*", "C"), "O");
        assert_eq!(guess("H5''", "G"), "H");
        assert_eq!(guess(" HO2'", "A"), "H");
        assert_eq!(guess(" N1 ", "DA5"), "N");
        assert_eq!(guess(" C5 ", "RU3"), "C");
        assert_eq!(guess(" OW ", "SOL"), "O");
        assert_eq!(guess(" HW1", "SOL"), "H");
        assert_eq!(guess(" HW2", "SOL"), "H");
        assert_eq!(guess(" OH2", "TIP3"), "O");
        assert_eq!(guess(" H1 ", "TIP3"), "H");
        assert_eq!(guess(" O  ", "HOH"), "O");
        assert_eq!(guess(" O  ", "WAT"), "O");
        // Virtual sites are no element.
        assert_eq!(guess(" MW ", "SOL"), "X");
        assert_eq!(guess(" EPW", "WAT"), "X");
        assert_eq!(guess(" LP1", "SOL"), "X");
    }

    #[test]
    fn guess_ions() {
        assert_eq!(guess("NA  ", "NA"), "Na");
        assert_eq!(guess(" NA ", "NA"), "Na");
        assert_eq!(guess(" CL ", "CL"), "Cl");
        assert_eq!(guess("CL  ", "CL"), "Cl");
        assert_eq!(guess(" CL-", "CL-"), "Cl");
        assert_eq!(guess(" NA+", "NA+"), "Na");
        assert_eq!(guess("Na+ ", "Na+"), "Na");
        assert_eq!(guess(" ZN ", "ZN"), "Zn");
        assert_eq!(guess(" ZN ", "ZN2"), "Zn");
        assert_eq!(guess(" MG ", "MG"), "Mg");
        assert_eq!(guess(" CA ", "CA"), "Ca");
        assert_eq!(guess("CA  ", "CA"), "Ca");
        assert_eq!(guess(" K  ", "K"), "K");
        assert_eq!(guess(" K+ ", "K+"), "K");
        assert_eq!(guess(" FE ", "FE"), "Fe");
        assert_eq!(guess(" FE ", "FE2"), "Fe");
        assert_eq!(guess(" CU ", "CU1"), "Cu");
        assert_eq!(guess(" CD ", "CD"), "Cd");
        assert_eq!(guess(" HG ", "HG"), "Hg");
        assert_eq!(guess(" CO ", "CO"), "Co");
        assert_eq!(guess(" MN ", "MN"), "Mn");
        assert_eq!(guess(" I  ", "IOD"), "I");
        assert_eq!(guess(" BR ", "BR"), "Br");
        // CHARMM ion names.
        assert_eq!(guess(" SOD", "SOD"), "Na");
        assert_eq!(guess("SOD ", "SOD"), "Na");
        assert_eq!(guess(" CLA", "CLA"), "Cl");
        assert_eq!(guess(" POT", "POT"), "K");
        assert_eq!(guess(" CAL", "CAL"), "Ca");
        assert_eq!(guess(" CES", "CES"), "Cs");
        assert_eq!(guess(" ZN ", "ZN2"), "Zn");
        assert_eq!(guess(" ZN2", "ZN2"), "Zn");
        assert_eq!(guess(" SOD", "ION"), "Na");
        assert_eq!(guess(" NA+", "ION"), "Na");
        assert_eq!(guess(" CL-", "ION"), "Cl");
    }

    #[test]
    fn charmm_ion_names_need_their_residue() {
        // Chlorophyll a is residue CLA: its "NA" is a ring nitrogen, "MG" magnesium.
        assert_eq!(guess(" NA ", "CLA"), "N");
        assert_eq!(guess(" MG ", "CLA"), "Mg");
        assert_eq!(guess(" CHA", "CLA"), "C");
        // A CHARMM ion name in another residue is just a name.
        assert_eq!(guess(" CAL", "LIG"), "C");
    }

    #[test]
    fn guess_hetero_groups() {
        // Haem: proper PDB puts iron in column 13 and the pyrrole nitrogens in column 14;
        // GROMACS (old) puts both in column 14.
        assert_eq!(guess("FE  ", "HEM"), "Fe");
        assert_eq!(guess(" FE ", "HEM"), "Fe");
        assert_eq!(guess(" NA ", "HEM"), "N");
        assert_eq!(guess(" NB ", "HEM"), "N");
        assert_eq!(guess(" CHA", "HEM"), "C");
        assert_eq!(guess(" O1A", "HEM"), "O");
        assert_eq!(guess("HHA ", "HEM"), "H");
        // Selenomethionine.
        assert_eq!(guess("SE  ", "MSE"), "Se");
        assert_eq!(guess(" SE ", "MSE"), "Se");
        assert_eq!(guess(" CE ", "MSE"), "C");
        assert_eq!(guess(" CA ", "MSE"), "C");
        assert_eq!(guess(" HG2", "MSE"), "H");
        // Halogens in ligands, aligned or not.
        assert_eq!(guess("CL1 ", "LIG"), "Cl");
        assert_eq!(guess(" CL1", "LIG"), "Cl");
        assert_eq!(guess("CL12", "LIG"), "Cl");
        assert_eq!(guess(" BR ", "LIG"), "Br");
        assert_eq!(guess("BR1 ", "LIG"), "Br");
        assert_eq!(guess(" C1 ", "LIG"), "C");
        assert_eq!(guess(" C12", "LIG"), "C");
        assert_eq!(guess("C10A", "LIG"), "C");
        assert_eq!(guess(" CAA", "LIG"), "C");
        assert_eq!(guess(" N1 ", "LIG"), "N");
        assert_eq!(guess(" F1 ", "LIG"), "F");
        assert_eq!(guess(" I1 ", "LIG"), "I");
        // Column 13 with a short name marks a two-letter element...
        assert_eq!(guess("CA  ", "LIG"), "Ca");
        assert_eq!(guess("ZN1 ", "LIG"), "Zn");
        assert_eq!(guess("HG  ", "MMC"), "Hg");
        assert_eq!(guess("CD  ", "LIG"), "Cd");
        // ...but not for four-character names, or letters following an organic letter.
        assert_eq!(guess("CAAB", "LIG"), "C");
        assert_eq!(guess("CAA ", "LIG"), "C");
        assert_eq!(guess("HG11", "LIG"), "H");
        assert_eq!(guess("HG1 ", "LIG"), "H");
        assert_eq!(guess("HE21", "LIG"), "H");
        assert_eq!(guess("NE  ", "LIG"), "N");
        assert_eq!(guess("HO  ", "LIG"), "H");
        // Column 14 two-letter names that are usually organic stay organic.
        assert_eq!(guess(" CA ", "LIG"), "C");
        assert_eq!(guess(" CD ", "HYP"), "C");
        assert_eq!(guess(" HG ", "LIG"), "H");
        assert_eq!(guess(" PB ", "ATP"), "P");
        assert_eq!(guess(" PA ", "ADP"), "P");
        assert_eq!(guess(" O1G", "ATP"), "O");
        // Names whose first letter is no element.
        assert_eq!(guess(" MG ", "LIG"), "Mg");
        assert_eq!(guess(" ZN1", "LIG"), "Zn");
        assert_eq!(guess(" MN ", "LIG"), "Mn");
        assert_eq!(guess(" AU ", "LIG"), "Au");
        assert_eq!(guess(" LP1", "LIG"), "X");
        // Metals in complexes written by MD programs.
        assert_eq!(guess(" CO ", "B12"), "Co");
        assert_eq!(guess(" NI1", "LIG"), "Ni");
        assert_eq!(guess(" CU ", "LIG"), "Cu");
        assert_eq!(guess(" PT ", "CPT"), "Pt");
        assert_eq!(guess(" CO2", "LIG"), "Co");
        assert_eq!(guess(" COA", "LIG"), "C");
        assert_eq!(guess(" SEA", "LIG"), "S");
        // Hydrogens of ligands.
        assert_eq!(guess(" H1 ", "LIG"), "H");
        assert_eq!(guess("H10R", "POPC"), "H");
        assert_eq!(guess(" HS ", "POPC"), "H");
        assert_eq!(guess("C210", "POPC"), "C");
        assert_eq!(guess(" O11", "POPC"), "O");
        assert_eq!(guess(" P  ", "POPC"), "P");
    }

    #[test]
    fn guess_unaligned_names() {
        // Trimmed names (mmCIF without type_symbol) carry no column information.
        assert_eq!(guess("CA", "LIG"), "C");
        assert_eq!(guess("CA", "MSE"), "C");
        assert_eq!(guess("NA", "HEM"), "N");
        assert_eq!(guess("FE", "HEM"), "Fe");
        assert_eq!(guess("HG", "LIG"), "H");
        assert_eq!(guess("ZN", "LIG"), "Zn");
        assert_eq!(guess("CL1", "LIG"), "Cl");
        assert_eq!(guess("NA", "NA"), "Na");
        assert_eq!(guess("CA", "CA"), "Ca");
        // A truncated line: fewer than four columns.
        assert_eq!(guess("CA ", "LIG"), "C");
    }

    #[test]
    fn guess_degenerate_input() {
        assert_eq!(guess("", "ALA"), "X");
        assert_eq!(guess("    ", "LIG"), "X");
        assert_eq!(guess(" 123", "LIG"), "X");
        assert_eq!(guess("''", ""), "X");
        assert_eq!(guess(" QX ", ""), "X");
        assert_eq!(guess(" C  ", ""), "C");
        assert_eq!(guess(" XE ", "XE"), "Xe");
        assert_eq!(guess("é", "LIG"), "X");
        // Longer than four characters is tolerated.
        assert_eq!(guess("  CA  ", " ALA "), "C");
        assert_eq!(guess("CLABCDEFGHIJ", "LIG"), "Cl");
    }
}
