//! Copying a texture region back to the CPU, with wgpu's 256-byte row padding stripped.

use super::RenderError;

/// Bytes per row of a buffer copy of `width` texels of `bytes_per_texel`, padded as wgpu
/// requires (`COPY_BYTES_PER_ROW_ALIGNMENT`, 256).
pub(crate) fn padded_row(width: u32, bytes_per_texel: u32) -> u32 {
    (width * bytes_per_texel).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
}

/// A rectangle of texels to read back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    /// Top-left texel.
    pub origin: (u32, u32),
    /// Width and height in texels.
    pub size: (u32, u32),
    /// Bytes per texel of the texture's format.
    pub bytes_per_texel: u32,
}

/// Copies `region` of `texture` into `buffer` (which must be at least `padded_row · height`
/// bytes, `COPY_DST | MAP_READ`) after the commands in `encoder`, submits, waits, and returns
/// the tightly packed rows.
pub(crate) fn read_region(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    mut encoder: wgpu::CommandEncoder,
    texture: &wgpu::Texture,
    region: Region,
    buffer: &wgpu::Buffer,
) -> Result<Vec<u8>, RenderError> {
    let Region { origin, size, bytes_per_texel } = region;
    let row = padded_row(size.0, bytes_per_texel);
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x: origin.0, y: origin.1, z: 0 },
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer,
            layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row), rows_per_image: Some(size.1) },
        },
        wgpu::Extent3d { width: size.0, height: size.1, depth_or_array_layers: 1 },
    );
    queue.submit([encoder.finish()]);
    let bytes = u64::from(row) * u64::from(size.1);
    let slice = buffer.slice(..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| RenderError::Readback(e.to_string()))?;
    rx.recv().map_err(|e| RenderError::Readback(e.to_string()))?.map_err(|e| RenderError::Readback(e.to_string()))?;
    let tight = (size.0 * bytes_per_texel) as usize;
    let mut out = Vec::with_capacity(tight * size.1 as usize);
    {
        let view = slice.get_mapped_range().map_err(|e| RenderError::Readback(e.to_string()))?;
        for r in view.chunks(row as usize).take(size.1 as usize) {
            out.extend_from_slice(&r[..tight]);
        }
    }
    buffer.unmap();
    Ok(out)
}

/// Maps a `MAP_READ` buffer (its copy already submitted), waits, and returns it as `u32`s.
pub(crate) fn read_buffer(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<Vec<u32>, RenderError> {
    let slice = buffer.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| RenderError::Readback(e.to_string()))?;
    rx.recv().map_err(|e| RenderError::Readback(e.to_string()))?.map_err(|e| RenderError::Readback(e.to_string()))?;
    let words = {
        let view = slice.get_mapped_range().map_err(|e| RenderError::Readback(e.to_string()))?;
        view.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    buffer.unmap();
    Ok(words)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_are_padded_to_256_bytes() {
        assert_eq!(super::padded_row(1, 4), 256);
        assert_eq!(super::padded_row(64, 4), 256);
        assert_eq!(super::padded_row(65, 4), 512);
        assert_eq!(super::padded_row(256, 4), 1024);
    }
}
