//! RGBA8 images: what headless rendering returns, PNG in and out, and the per-pixel comparison
//! the golden-image tests use.

use std::io::{BufReader, Cursor};
use std::path::Path;

/// Problems reading or writing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// File could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Encode(#[from] png::EncodingError),
    /// PNG decoding failed.
    #[error("PNG decoding: {0}")]
    Decode(#[from] png::DecodingError),
    /// A PNG that is not 8-bit RGB or RGBA after expansion.
    #[error("unsupported PNG colour type {0:?} (8-bit RGB or RGBA expected)")]
    Unsupported(png::ColorType),
}

/// An 8-bit RGBA image in sRGB, rows top to bottom, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 4` bytes.
    pub pixels: Vec<u8>,
}

/// How two images differ, pixel by pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageDiff {
    /// Pixels where some channel differs by more than the tolerance.
    pub differing: usize,
    /// Largest difference of any channel anywhere.
    pub max_channel_delta: u8,
}

impl RgbaImage {
    /// The RGBA value at (x, y); `None` outside the image.
    #[must_use]
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.pixels.get(i..i + 4).and_then(|p| p.try_into().ok())
    }

    /// Encodes as an 8-bit RGBA PNG tagged sRGB.
    pub fn encode_png(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&self.pixels)?;
            writer.finish()?;
        }
        Ok(out)
    }

    /// Writes the image as PNG to `path`.
    pub fn write_png(&self, path: &Path) -> Result<(), ImageError> {
        let bytes = self.encode_png()?;
        std::fs::write(path, bytes).map_err(|source| ImageError::Io { path: path.display().to_string(), source })
    }

    /// Decodes an 8-bit RGB or RGBA PNG (palettes and low bit depths are expanded).
    pub fn decode_png(bytes: &[u8]) -> Result<Self, ImageError> {
        let mut decoder = png::Decoder::new(BufReader::new(Cursor::new(bytes)));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info()?;
        let size = reader.output_buffer_size().unwrap_or(0);
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf)?;
        buf.truncate(info.buffer_size());
        let pixels = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect(),
            other => return Err(ImageError::Unsupported(other)),
        };
        Ok(Self { width: info.width, height: info.height, pixels })
    }

    /// Reads a PNG file.
    pub fn read_png(path: &Path) -> Result<Self, ImageError> {
        let bytes =
            std::fs::read(path).map_err(|source| ImageError::Io { path: path.display().to_string(), source })?;
        Self::decode_png(&bytes)
    }

    /// Compares with `other` channel by channel; a pixel differs when any channel is off by more
    /// than `tolerance`. Images of different sizes differ everywhere.
    #[must_use]
    pub fn diff(&self, other: &RgbaImage, tolerance: u8) -> ImageDiff {
        if self.width != other.width || self.height != other.height {
            let n = (self.width as usize * self.height as usize).max(other.width as usize * other.height as usize);
            return ImageDiff { differing: n, max_channel_delta: u8::MAX };
        }
        let mut d = ImageDiff { differing: 0, max_channel_delta: 0 };
        for (a, b) in self.pixels.chunks_exact(4).zip(other.pixels.chunks_exact(4)) {
            let m = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
            d.max_channel_delta = d.max_channel_delta.max(m);
            if m > tolerance {
                d.differing += 1;
            }
        }
        d
    }

    /// Number of pixels whose colour differs from `background` by more than `tolerance` in some
    /// channel: how much of the image the scene covers.
    #[must_use]
    pub fn count_not(&self, background: [u8; 4], tolerance: u8) -> usize {
        self.pixels.chunks_exact(4).filter(|p| p.iter().zip(background).any(|(a, b)| a.abs_diff(b) > tolerance)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_diff() {
        let mut img = RgbaImage { width: 3, height: 2, pixels: (0..24).map(|v| v * 10).collect() };
        let back = RgbaImage::decode_png(&img.encode_png().unwrap()).unwrap();
        assert_eq!(back, img);
        assert_eq!(img.pixel(2, 1), Some([200, 210, 220, 230]));
        assert_eq!(img.pixel(3, 0), None);
        let same = img.diff(&back, 0);
        assert_eq!(same, ImageDiff { differing: 0, max_channel_delta: 0 });
        img.pixels[5] += 3;
        assert_eq!(img.diff(&back, 2), ImageDiff { differing: 1, max_channel_delta: 3 });
        assert_eq!(img.diff(&back, 3).differing, 0);
        let other = RgbaImage { width: 2, height: 3, pixels: back.pixels.clone() };
        assert_eq!(other.diff(&back, 255).differing, 6);
        assert_eq!(back.count_not([0, 10, 20, 30], 0), 5);
        assert!(RgbaImage::decode_png(b"not a png").is_err());
    }
}
