//! A single-pass mmCIF reader: a CIF 1.1 tokenizer (quoted values, `;` text fields, comments,
//! loops and key-value pairs) and the categories a viewer needs: `atom_site`, `struct_conf`
//! and `struct_sheet_range`. Values are borrowed from the text, never copied.

use std::collections::HashMap;

use glam::Vec3;

use super::{LoadError, ParsedModel, ParsedStructure};
use crate::builder::{AtomRecord, SecondaryRange, TopologyBuilder};
use crate::element::Element;
use crate::model::SecondaryStructure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Data,
    Loop,
    Tag(&'a str),
    Value(&'a str),
    /// `?` or `.`: unknown or inapplicable.
    Missing,
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0, line: 1 }
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.text.as_bytes()[self.pos - 1] == b'\n'
    }

    /// Next token and the line it starts on.
    fn next(&mut self) -> Result<Option<(Tok<'a>, usize)>, (usize, String)> {
        let b = self.text.as_bytes();
        loop {
            while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
                if b[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return Ok(None);
            }
            if b[self.pos] == b'#' {
                while self.pos < b.len() && b[self.pos] != b'\n' {
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let line = self.line;
        let start = self.pos;
        let c = b[start];
        if c == b';' && self.at_line_start() {
            // Text field: up to the next line that starts with ';'.
            let body = start + 1;
            let mut i = body;
            loop {
                match self.text[i..].find('\n') {
                    None => return Err((line, "text field (;) is not closed".into())),
                    Some(nl) => {
                        i += nl + 1;
                        self.line += 1;
                        if b.get(i) == Some(&b';') {
                            self.pos = i + 1;
                            let v = self.text[body..i - 1].trim_end_matches('\r');
                            return Ok(Some((Tok::Value(v), line)));
                        }
                    }
                }
            }
        }
        if c == b'\'' || c == b'"' {
            // Quoted: ends at the same quote followed by whitespace or the end.
            let mut i = start + 1;
            while i < b.len() {
                if b[i] == b'\n' {
                    return Err((line, "quoted value runs past the end of the line".into()));
                }
                if b[i] == c && (i + 1 == b.len() || b[i + 1].is_ascii_whitespace()) {
                    self.pos = i + 1;
                    return Ok(Some((Tok::Value(&self.text[start + 1..i]), line)));
                }
                i += 1;
            }
            return Err((line, "quoted value is not closed".into()));
        }
        let mut i = start;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        self.pos = i;
        let word = &self.text[start..i];
        let tok = if c == b'_' {
            Tok::Tag(word)
        } else if word.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data_")) {
            Tok::Data
        } else if word.eq_ignore_ascii_case("loop_") {
            Tok::Loop
        } else if word.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("save_"))
            || word.eq_ignore_ascii_case("stop_")
            || word.eq_ignore_ascii_case("global_")
        {
            return Err((line, format!("unsupported CIF construct {word:?}")));
        } else if word == "?" || word == "." {
            Tok::Missing
        } else {
            Tok::Value(word)
        };
        Ok(Some((tok, line)))
    }
}

/// One category as a table of borrowed values (a loop, or key-value pairs as one row).
#[derive(Default, Debug)]
struct Table<'a> {
    /// Field names (after the dot), lower-cased.
    fields: Vec<String>,
    /// Row-major values; `None` for `?` and `.`.
    values: Vec<Option<&'a str>>,
    /// Line of each row's first value.
    row_lines: Vec<usize>,
}

impl<'a> Table<'a> {
    fn rows(&self) -> usize {
        if self.fields.is_empty() { 0 } else { self.values.len() / self.fields.len() }
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }

    fn get(&self, row: usize, col: Option<usize>) -> Option<&'a str> {
        col.and_then(|c| self.values[row * self.fields.len() + c])
    }
}

const WANTED: [&str; 3] = ["atom_site", "struct_conf", "struct_sheet_range"];

fn split_tag(tag: &str) -> (String, String) {
    let t = tag.trim_start_matches('_');
    match t.split_once('.') {
        Some((c, f)) => (c.to_ascii_lowercase(), f.to_ascii_lowercase()),
        None => (t.to_ascii_lowercase(), String::new()),
    }
}

/// Reads the categories in [`WANTED`] from the first data block.
fn read_tables<'a>(text: &'a str, name: &str) -> Result<HashMap<String, Table<'a>>, LoadError> {
    let syntax = |(line, message): (usize, String)| LoadError::Syntax { file: name.to_owned(), line, message };
    let mut lx = Lexer::new(text);
    let mut tables: HashMap<String, Table<'a>> = HashMap::new();
    let mut blocks = 0;
    let mut pending: Option<(Tok<'a>, usize)> = None;
    loop {
        let next = match pending.take() {
            Some(t) => Some(t),
            None => lx.next().map_err(syntax)?,
        };
        let Some((tok, line)) = next else { break };
        match tok {
            Tok::Data => {
                blocks += 1;
                if blocks > 1 {
                    break;
                }
            }
            Tok::Loop => {
                let mut category = String::new();
                let mut fields = Vec::new();
                let mut values = Vec::new();
                let mut row_lines = Vec::new();
                loop {
                    match lx.next().map_err(syntax)? {
                        Some((Tok::Tag(t), tl)) => {
                            if !values.is_empty() {
                                pending = Some((Tok::Tag(t), tl));
                                break;
                            }
                            let (c, f) = split_tag(t);
                            if !category.is_empty() && c != category {
                                return Err(syntax((tl, format!("loop mixes categories {category} and {c}"))));
                            }
                            category = c;
                            fields.push(f);
                        }
                        Some((Tok::Value(v), vl)) => {
                            if fields.is_empty() {
                                return Err(syntax((vl, "loop_ value before any tag".into())));
                            }
                            if values.len() % fields.len() == 0 {
                                row_lines.push(vl);
                            }
                            values.push(Some(v));
                        }
                        Some((Tok::Missing, vl)) => {
                            if fields.is_empty() {
                                return Err(syntax((vl, "loop_ value before any tag".into())));
                            }
                            if values.len() % fields.len() == 0 {
                                row_lines.push(vl);
                            }
                            values.push(None);
                        }
                        other => {
                            pending = other;
                            break;
                        }
                    }
                }
                if fields.is_empty() {
                    return Err(syntax((line, "loop_ without tags".into())));
                }
                if values.len() % fields.len() != 0 {
                    return Err(syntax((
                        line,
                        format!(
                            "loop of _{category} has {} values, not a multiple of its {} columns",
                            values.len(),
                            fields.len()
                        ),
                    )));
                }
                if WANTED.contains(&category.as_str()) {
                    tables.insert(category, Table { fields, values, row_lines });
                }
            }
            Tok::Tag(t) => {
                let value = match lx.next().map_err(syntax)? {
                    Some((Tok::Value(v), _)) => Some(v),
                    Some((Tok::Missing, _)) => None,
                    _ => return Err(syntax((line, format!("tag {t} has no value")))),
                };
                let (c, f) = split_tag(t);
                if WANTED.contains(&c.as_str()) {
                    let table = tables.entry(c).or_default();
                    if table.row_lines.is_empty() {
                        table.row_lines.push(line);
                    }
                    table.fields.push(f);
                    table.values.push(value);
                }
            }
            Tok::Value(_) | Tok::Missing => {
                return Err(syntax((line, "value without a tag".into())));
            }
        }
    }
    if blocks == 0 {
        return Err(syntax((1, "no data_ block".into())));
    }
    Ok(tables)
}

fn first_char(v: Option<&str>) -> u8 {
    v.and_then(|s| s.bytes().next()).filter(u8::is_ascii_graphic).unwrap_or(0)
}

/// Parses mmCIF text.
pub(super) fn parse(text: &str, name: &str, max_atoms: usize) -> Result<ParsedStructure, LoadError> {
    let tables = read_tables(text, name)?;
    let Some(atoms) = tables.get("atom_site") else {
        return Err(LoadError::NoAtoms { file: name.to_owned() });
    };
    let err = |line: usize, message: String| LoadError::Syntax { file: name.to_owned(), line, message };
    let c = |f: &str| atoms.column(f);
    let (cx, cy, cz) = (c("cartn_x"), c("cartn_y"), c("cartn_z"));
    if cx.is_none() || cy.is_none() || cz.is_none() {
        return Err(err(atoms.row_lines.first().copied().unwrap_or(1), "atom_site has no Cartn_x/y/z".into()));
    }
    let group = c("group_pdb");
    let id = c("id");
    let symbol = c("type_symbol");
    let atom_name = c("auth_atom_id").or(c("label_atom_id"));
    let label_atom = c("label_atom_id");
    let alt = c("label_alt_id");
    let comp = c("auth_comp_id").or(c("label_comp_id"));
    let asym = c("auth_asym_id").or(c("label_asym_id"));
    let label_asym = c("label_asym_id");
    let seq = c("auth_seq_id");
    let label_seq = c("label_seq_id");
    let ins = c("pdbx_pdb_ins_code");
    let occ = c("occupancy");
    let bfac = c("b_iso_or_equiv");
    let charge = c("pdbx_formal_charge");
    let model_num = c("pdbx_pdb_model_num");

    let rows = atoms.rows();
    if rows > max_atoms {
        return Err(LoadError::TooLarge {
            file: name.to_owned(),
            message: format!("{rows} atoms, more than {max_atoms}"),
        });
    }
    let mut models: Vec<ParsedModel> = Vec::new();
    let mut current_number: Option<&str> = None;
    let mut builder = TopologyBuilder::with_capacity(rows);
    let mut unknown_elements = 0usize;
    let mut last_chain: Option<&str> = None;
    for r in 0..rows {
        let line = atoms.row_lines[r];
        let het = match atoms.get(r, group) {
            Some(g) if g.eq_ignore_ascii_case("ATOM") => false,
            Some(g) if g.eq_ignore_ascii_case("HETATM") => true,
            None if group.is_none() => false,
            other => {
                return Err(err(line, format!("atom_site.group_PDB is {other:?}, expected ATOM or HETATM")));
            }
        };
        let num = atoms.get(r, model_num);
        if r == 0 {
            current_number = num;
        } else if num != current_number {
            let per_model = builder.atom_count();
            let done = std::mem::replace(&mut builder, TopologyBuilder::with_capacity(per_model));
            models.push(ParsedModel { builder: done, number: parse_model(current_number, models.len()) });
            current_number = num;
            last_chain = None;
        }
        let coord = |col: Option<usize>| -> Result<f32, LoadError> {
            atoms
                .get(r, col)
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(line, format!("bad coordinate {:?}", atoms.get(r, col))))
        };
        let position = Vec3::new(coord(cx)?, coord(cy)?, coord(cz)?);
        let res_name = atoms.get(r, comp).unwrap_or("");
        let name_str = atoms.get(r, atom_name).or(atoms.get(r, label_atom)).unwrap_or("");
        let element = match atoms.get(r, symbol).and_then(Element::from_symbol) {
            Some(e) => e,
            None => {
                unknown_elements += 1;
                Element::guess_from_atom_name(name_str, res_name)
            }
        };
        let seq_num = match atoms.get(r, seq).or(atoms.get(r, label_seq)) {
            Some(s) => s.parse::<i32>().map_err(|_| err(line, format!("bad residue number {s:?}")))?,
            // Waters and ligands without any sequence number: number them by label entity.
            None => 0,
        };
        let chain = atoms.get(r, asym).or(atoms.get(r, label_asym)).unwrap_or("");
        // A new label_asym with the same author chain (e.g. waters of chain A) is a new segment.
        if label_asym.is_some() && asym != label_asym {
            let la = atoms.get(r, label_asym);
            if last_chain.is_some() && last_chain != la {
                builder.chain_break();
            }
            last_chain = la;
        }
        builder.push(&AtomRecord {
            name: name_str,
            element,
            serial: atoms.get(r, id).and_then(|s| s.parse().ok()).unwrap_or(i32::try_from(r + 1).unwrap_or(i32::MAX)),
            alt_loc: first_char(atoms.get(r, alt)),
            het,
            occupancy: atoms.get(r, occ).and_then(|s| s.parse().ok()).unwrap_or(1.0),
            b_factor: atoms.get(r, bfac).and_then(|s| s.parse().ok()).unwrap_or(0.0),
            formal_charge: atoms.get(r, charge).and_then(|s| s.parse().ok()).unwrap_or(0),
            res_name,
            chain,
            seq_num,
            ins_code: first_char(atoms.get(r, ins)),
            position,
        });
    }
    models.push(ParsedModel { builder, number: parse_model(current_number, models.len()) });

    let mut secondary = Vec::new();
    for (cat, kind) in [("struct_conf", None), ("struct_sheet_range", Some(SecondaryStructure::Sheet))] {
        let Some(t) = tables.get(cat) else { continue };
        let f = |n: &str| t.column(n);
        let (ty, chain, bs, bi, es, ei) = (
            f("conf_type_id"),
            f("beg_auth_asym_id"),
            f("beg_auth_seq_id"),
            f("pdbx_beg_pdb_ins_code"),
            f("end_auth_seq_id"),
            f("pdbx_end_pdb_ins_code"),
        );
        for r in 0..t.rows() {
            let kind = kind.unwrap_or_else(|| match t.get(r, ty) {
                Some(s) if s.to_ascii_uppercase().starts_with("HELX") => SecondaryStructure::Helix,
                Some(s) if s.to_ascii_uppercase().starts_with("TURN") => SecondaryStructure::Turn,
                Some(s) if s.to_ascii_uppercase().starts_with("STRN") => SecondaryStructure::Sheet,
                _ => SecondaryStructure::Coil,
            });
            let (Some(b), Some(e)) =
                (t.get(r, bs).and_then(|s| s.parse().ok()), t.get(r, es).and_then(|s| s.parse().ok()))
            else {
                continue;
            };
            secondary.push(SecondaryRange {
                kind,
                chain: t.get(r, chain).unwrap_or("").to_owned(),
                start: (b, first_char(t.get(r, bi))),
                end: (e, first_char(t.get(r, ei))),
            });
        }
    }
    let mut warnings = Vec::new();
    if unknown_elements > 0 {
        warnings.push(super::LoadWarning {
            line: None,
            origin: super::WarningOrigin::Molstream,
            message: format!("{unknown_elements} atoms have no known type_symbol; guessed from atom names"),
        });
    }
    Ok(ParsedStructure { models, secondary, conect: Vec::new(), warnings })
}

fn parse_model(v: Option<&str>, index: usize) -> i32 {
    v.and_then(|s| s.parse().ok()).unwrap_or_else(|| i32::try_from(index + 1).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        let mut lx = Lexer::new(s);
        let mut v = Vec::new();
        while let Some((t, _)) = lx.next().unwrap() {
            v.push(t);
        }
        v
    }

    #[test]
    fn lexer_handles_quotes_text_fields_and_comments() {
        let t = toks("data_x\n_a.b 'it''s x' # c\n_a.c \"O5'\"\n_a.d\n;line1\nline2\n;\nloop_ _l.x ? . v");
        assert_eq!(
            t,
            vec![
                Tok::Data,
                Tok::Tag("_a.b"),
                Tok::Value("it''s x"),
                Tok::Tag("_a.c"),
                Tok::Value("O5'"),
                Tok::Tag("_a.d"),
                Tok::Value("line1\nline2"),
                Tok::Loop,
                Tok::Tag("_l.x"),
                Tok::Missing,
                Tok::Missing,
                Tok::Value("v"),
            ]
        );
    }

    #[test]
    fn unclosed_constructs_are_errors_with_lines() {
        let mut lx = Lexer::new("data_x\n_a.b 'open\n");
        assert!(matches!(lx.next(), Ok(Some((Tok::Data, 1)))));
        assert!(matches!(lx.next(), Ok(Some((Tok::Tag(_), 2)))));
        assert!(matches!(lx.next(), Err((2, _))));
        let mut lx = Lexer::new("_a\n;never closed\n");
        lx.next().unwrap();
        assert!(lx.next().is_err());
    }
}
