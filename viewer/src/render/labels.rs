//! Label text: laid out with epaint (egui's text engine and bundled fonts) into glyph quads
//! ([`LabelGlyph`]) and a coverage atlas.
//!
//! Labels keep a constant size in pixels, so each is laid out once at its pixel size (font size
//! in points × pixels per point, at least [`MIN_LABEL_PIXELS`]) with one pixel per point: glyph
//! texels land on screen pixels one to one and the text is as sharp as egui's own. The
//! vertex shader (`vs_label` in `shaders/shape_draw.wgsl`) places each quad relative to the
//! anchor's projected pixel.

use egui::epaint::text::{FontDefinitions, FontFamily, FontId, Fonts, TextOptions, ViewportKey};
use glam::Vec3;

use super::shapes::LabelGlyph;

/// Least height of label text, pixels: small font sizes stay readable.
pub const MIN_LABEL_PIXELS: f32 = 9.0;
/// Largest height of label text, pixels (bounds the glyph atlas).
pub const MAX_LABEL_PIXELS: f32 = 160.0;

/// One label to lay out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelSource<'a> {
    /// Resolved anchor word.
    pub anchor: u32,
    /// Anchor offset, Å.
    pub offset: Vec3,
    /// Text (may hold newlines).
    pub text: &'a str,
    /// Font size, points.
    pub font_size: f32,
    /// RGBA8 colour.
    pub color: u32,
    /// Picking id.
    pub pick_id: u32,
}

/// The glyph coverage atlas: one byte per texel, rows top to bottom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Atlas {
    /// Width and height in texels.
    pub size: [u32; 2],
    /// Coverage, `width · height` bytes.
    pub coverage: Vec<u8>,
}

/// Pixel height of a label of `font_size` points.
#[must_use]
pub fn label_pixels(font_size: f32, pixels_per_point: f32) -> f32 {
    let px = font_size * pixels_per_point;
    if px.is_finite() { px.clamp(MIN_LABEL_PIXELS, MAX_LABEL_PIXELS) } else { MIN_LABEL_PIXELS }
}

/// epaint's font system, created when the first label is laid out (≈ a few ms).
pub(crate) struct LabelFonts {
    fonts: Fonts,
    options: TextOptions,
}

impl std::fmt::Debug for LabelFonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelFonts").field("atlas", &self.fonts.font_image_size()).finish()
    }
}

impl LabelFonts {
    /// The default fonts with an atlas of at most `max_side` texels a side.
    pub fn new(max_side: u32) -> Self {
        let options = TextOptions {
            max_texture_side: max_side.clamp(256, 8192) as usize,
            // Quads are snapped to whole pixels: one rasterization per glyph is enough.
            subpixel_binning: false,
            ..TextOptions::default()
        };
        Self { fonts: Fonts::new(options, FontDefinitions::default()), options }
    }

    /// Lays out `labels` into `out` (cleared first): one quad per visible glyph, the text
    /// centred on its anchor. Returns the atlas the quads' coordinates refer to.
    pub fn layout<'a>(
        &mut self,
        labels: impl IntoIterator<Item = LabelSource<'a>>,
        pixels_per_point: f32,
        out: &mut Vec<LabelGlyph>,
    ) -> Atlas {
        out.clear();
        self.fonts.begin_pass(self.options, ViewportKey::default());
        let mut texel_rects = Vec::new();
        {
            let mut view = self.fonts.with_pixels_per_point(1.0);
            for l in labels {
                if l.text.is_empty() {
                    continue;
                }
                let px = label_pixels(l.font_size, pixels_per_point);
                let galley = view.layout_no_wrap(
                    l.text.to_owned(),
                    FontId::new(px, FontFamily::Proportional),
                    egui::epaint::Color32::WHITE,
                );
                let size = galley.rect.size();
                let (dx, dy) = ((size.x * 0.5).round(), (size.y * 0.5).round());
                for row in &galley.rows {
                    for g in &row.glyphs {
                        let uv = g.uv_rect;
                        if uv.is_nothing() {
                            continue;
                        }
                        let x0 = (row.pos.x + g.pos.x + uv.offset.x).round() - dx;
                        let y0 = (row.pos.y + g.pos.y + uv.offset.y).round() - dy;
                        out.push(LabelGlyph {
                            offset: l.offset.to_array(),
                            anchor: l.anchor,
                            rect: [x0, y0, x0 + uv.size.x, y0 + uv.size.y],
                            uv: [0.0; 4],
                            color: l.color,
                            pick_id: l.pick_id,
                        });
                        texel_rects.push([uv.min, uv.max]);
                    }
                }
            }
        }
        // The atlas may have grown while laying out: normalise against its final size.
        let [w, h] = self.fonts.font_image_size();
        #[allow(clippy::cast_precision_loss)]
        let (fw, fh) = (w.max(1) as f32, h.max(1) as f32);
        for (g, [min, max]) in out.iter_mut().zip(texel_rects) {
            g.uv = [f32::from(min[0]) / fw, f32::from(min[1]) / fh, f32::from(max[0]) / fw, f32::from(max[1]) / fh];
        }
        let image = self.fonts.image();
        Atlas {
            size: [u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0)],
            coverage: image.pixels.iter().map(|c| c.a()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lay(text: &str, font_size: f32) -> (Vec<LabelGlyph>, Atlas) {
        let mut fonts = LabelFonts::new(2048);
        let mut out = Vec::new();
        let source = LabelSource { anchor: 0, offset: Vec3::ZERO, text, font_size, color: 0xff00_00ff, pick_id: 9 };
        let atlas = fonts.layout([source], 1.0, &mut out);
        (out, atlas)
    }

    #[test]
    fn glyphs_are_centred_and_sized_in_pixels() {
        let (small, atlas) = lay("CA 42", 12.0);
        // Four visible glyphs (the space has none).
        assert_eq!(small.len(), 4);
        assert_eq!(atlas.coverage.len(), (atlas.size[0] * atlas.size[1]) as usize);
        let x0 = small.iter().map(|g| g.rect[0]).fold(f32::INFINITY, f32::min);
        let x1 = small.iter().map(|g| g.rect[2]).fold(f32::NEG_INFINITY, f32::max);
        assert!(x0 < 0.0 && x1 > 0.0 && (x0 + x1).abs() <= 3.0, "centred: {x0}..{x1}");
        // Every quad covers atlas texels with ink.
        for g in &small {
            assert!(g.uv[0] < g.uv[2] && g.uv[1] < g.uv[3]);
            let w = atlas.size[0] as f32;
            let h = atlas.size[1] as f32;
            let (u0, v0, u1, v1) =
                ((g.uv[0] * w) as u32, (g.uv[1] * h) as u32, (g.uv[2] * w) as u32, (g.uv[3] * h) as u32);
            let ink: u32 = (v0..v1)
                .flat_map(|y| (u0..u1).map(move |x| (x, y)))
                .map(|(x, y)| u32::from(atlas.coverage[(y * atlas.size[0] + x) as usize]))
                .sum();
            assert!(ink > 0);
            // Quads are as large in pixels as in texels.
            assert!(((g.rect[2] - g.rect[0]) - (g.uv[2] - g.uv[0]) * w).abs() < 0.01);
            assert_eq!((g.color, g.pick_id), (0xff00_00ff, 9));
        }
        // Twice the font size: about twice as wide.
        let (big, _) = lay("CA 42", 24.0);
        let width = |v: &[LabelGlyph]| {
            v.iter().map(|g| g.rect[2]).fold(f32::NEG_INFINITY, f32::max)
                - v.iter().map(|g| g.rect[0]).fold(f32::INFINITY, f32::min)
        };
        let ratio = width(&big) / width(&small);
        assert!((1.7..2.3).contains(&ratio), "{ratio}");
    }

    #[test]
    fn tiny_sizes_are_raised_to_the_minimum() {
        assert!((label_pixels(1.0, 1.0) - MIN_LABEL_PIXELS).abs() < f32::EPSILON);
        assert!((label_pixels(f32::NAN, 1.0) - MIN_LABEL_PIXELS).abs() < f32::EPSILON);
        assert!((label_pixels(12.0, 2.0) - 24.0).abs() < f32::EPSILON);
        let (tiny, _) = lay("N", 0.5);
        let (min, _) = lay("N", MIN_LABEL_PIXELS);
        assert_eq!(tiny[0].rect, min[0].rect);
        assert!(lay("", 12.0).0.is_empty());
    }
}
