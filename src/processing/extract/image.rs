//! Images (PNG, JPEG, TIFF, WebP): their text, by OCR. The dimensions are read from
//! the header before anything decodes the pixels, so a small file that claims a huge
//! canvas (a decompression bomb) is refused for what it claims, not for what decoding
//! it would cost. Only bytes whose header parsed here reach Tesseract (see
//! `OcrOptions::recognise` for why that matters).

use super::ocr::OcrPages;
use super::{ExtractError, ExtractOptions, ExtractedText, Section};

pub const PNG: &str = "image/png";
pub const JPEG: &str = "image/jpeg";
pub const TIFF: &str = "image/tiff";
pub const WEBP: &str = "image/webp";

/// Tesseract keeps coordinates in 16 bits: it cannot read a wider or taller image.
const MAX_SIDE: u32 = 32767;

/// The dimensions of an image, or of each page of a multi-page TIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("its header is damaged or truncated")]
    Damaged,
    #[error("{0}")]
    Unsupported(&'static str),
}

pub(super) fn extract(
    media_type: &str,
    bytes: &[u8],
    options: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    on_ocr_pages: &mut dyn FnMut(OcrPages),
) -> Result<ExtractedText, ExtractError> {
    let kind = kind_name(media_type);
    let pages = dimensions(media_type, bytes)
        .map_err(|e| ExtractError::Permanent(format!("the {kind} image cannot be read: {e}")))?;
    let ocr = &options.ocr;
    if pages.len() as u64 > u64::from(ocr.max_pages) {
        return Err(ExtractError::Permanent(format!(
            "the {kind} image has {} pages, more than OCR reads (processing.ocr.max_pages_ocr = {})",
            pages.len(),
            ocr.max_pages
        )));
    }
    for (index, Dimensions { width, height }) in pages.iter().copied().enumerate() {
        let page = if pages.len() > 1 { format!(" (page {})", index + 1) } else { String::new() };
        let pixels = u64::from(width) * u64::from(height);
        if pixels > ocr.max_image_pixels {
            return Err(ExtractError::Permanent(format!(
                "the {kind} image{page} is {width} × {height} pixels ({pixels} pixels), more than the pixel limit \
                 (processing.ocr.max_image_pixels = {}); it was not decoded",
                ocr.max_image_pixels
            )));
        }
        if width > MAX_SIDE || height > MAX_SIDE || width == 0 || height == 0 {
            return Err(ExtractError::Permanent(format!(
                "the {kind} image{page} is {width} × {height} pixels; OCR reads images of 1 to {MAX_SIDE} pixels on \
                 a side"
            )));
        }
    }
    let what = format!("the {kind} image");
    if let Some(reason) = ocr.image_ocr_unavailable() {
        return Err(ExtractError::Permanent(format!("{what} cannot be read: {reason}")));
    }
    // Tesseract reads a multi-page TIFF in one run; progress moves when it ends.
    let total = pages.len() as u32;
    on_ocr_pages(OcrPages { done: 0, total });
    let text = ocr.recognise(bytes, None, &what)?;
    on_progress(1.0);
    on_ocr_pages(OcrPages { done: total, total });
    let sections = text
        .split('\x0c')
        .take(pages.len())
        .enumerate()
        .map(|(index, text)| Section { text: text.trim().to_string(), page: (total > 1).then_some(index as u32 + 1) })
        .collect::<Vec<_>>();
    if sections.iter().all(|section| section.text.is_empty()) {
        return Err(ExtractError::Permanent(format!("{what} contains no text that OCR could recognise")));
    }
    Ok(ExtractedText { sections, markdown: false, pages: (total > 1).then_some(total), warning: None })
}

fn kind_name(media_type: &str) -> &'static str {
    match media_type {
        PNG => "PNG",
        JPEG => "JPEG",
        TIFF => "TIFF",
        WEBP => "WebP",
        _ => "",
    }
}

/// The dimensions the header declares (every page's, for TIFF), without decoding.
pub fn dimensions(media_type: &str, bytes: &[u8]) -> Result<Vec<Dimensions>, HeaderError> {
    match media_type {
        PNG => png(bytes).map(|d| vec![d]),
        JPEG => jpeg(bytes).map(|d| vec![d]),
        WEBP => webp(bytes).map(|d| vec![d]),
        TIFF => tiff(bytes),
        _ => Err(HeaderError::Unsupported("not an image type OCR reads")),
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?)))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

/// PNG: the IHDR chunk, which must come first.
fn png(bytes: &[u8]) -> Result<Dimensions, HeaderError> {
    if bytes.get(..8) != Some(b"\x89PNG\r\n\x1a\n".as_slice()) || bytes.get(12..16) != Some(b"IHDR".as_slice()) {
        return Err(HeaderError::Damaged);
    }
    let width = be32(bytes, 16).ok_or(HeaderError::Damaged)?;
    let height = be32(bytes, 20).ok_or(HeaderError::Damaged)?;
    Ok(Dimensions { width, height })
}

/// JPEG: the first start-of-frame segment, found by walking the segments before it.
fn jpeg(bytes: &[u8]) -> Result<Dimensions, HeaderError> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(HeaderError::Damaged);
    }
    let mut at = 2;
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return Err(HeaderError::Damaged);
        }
        let marker = *bytes.get(at + 1).ok_or(HeaderError::Damaged)?;
        at += 2;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return Err(HeaderError::Damaged),
            _ => {}
        }
        let length = be16(bytes, at).ok_or(HeaderError::Damaged)? as usize;
        if length < 2 {
            return Err(HeaderError::Damaged);
        }
        // Start-of-frame markers, all but DHT (C4), JPG (C8) and DAC (CC).
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = be16(bytes, at + 3).ok_or(HeaderError::Damaged)?;
            let width = be16(bytes, at + 5).ok_or(HeaderError::Damaged)?;
            if height == 0 {
                // The height would come later, in a DNL segment after the first scan.
                return Err(HeaderError::Unsupported("its height is declared after the image data (DNL)"));
            }
            return Ok(Dimensions { width, height });
        }
        at += length;
    }
}

/// WebP: the canvas of an extended file, or the frame of a lossy or lossless one.
fn webp(bytes: &[u8]) -> Result<Dimensions, HeaderError> {
    if bytes.get(..4) != Some(b"RIFF".as_slice()) || bytes.get(8..12) != Some(b"WEBP".as_slice()) {
        return Err(HeaderError::Damaged);
    }
    let chunk = bytes.get(12..16).ok_or(HeaderError::Damaged)?;
    let data = 20;
    let dimensions = match chunk {
        b"VP8X" => le24(bytes, data + 4)
            .zip(le24(bytes, data + 7))
            .map(|(width, height)| Dimensions { width: width + 1, height: height + 1 }),
        b"VP8 " => {
            if bytes.get(data + 3..data + 6) != Some([0x9D, 0x01, 0x2A].as_slice()) {
                return Err(HeaderError::Damaged);
            }
            let width = bytes.get(data + 6..data + 8).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]) & 0x3FFF));
            let height = bytes.get(data + 8..data + 10).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]) & 0x3FFF));
            width.zip(height).map(|(width, height)| Dimensions { width, height })
        }
        b"VP8L" => {
            if bytes.get(data) != Some(&0x2F) {
                return Err(HeaderError::Damaged);
            }
            bytes.get(data + 1..data + 5).map(|b| {
                let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Dimensions { width: (bits & 0x3FFF) + 1, height: ((bits >> 14) & 0x3FFF) + 1 }
            })
        }
        _ => return Err(HeaderError::Damaged),
    };
    dimensions.ok_or(HeaderError::Damaged)
}

/// Pages of a TIFF a file may chain; more is refused as damaged (a loop, or a bomb of
/// pages), long before `max_pages_ocr` could matter.
const MAX_TIFF_PAGES: usize = 10_000;

/// TIFF: every page's image file directory, following the chain.
fn tiff(bytes: &[u8]) -> Result<Vec<Dimensions>, HeaderError> {
    let big_endian = match bytes.get(..4) {
        Some(b"II*\0") => false,
        Some(b"MM\0*") => true,
        Some(b"II+\0" | b"MM\0+") => return Err(HeaderError::Unsupported("BigTIFF is not supported")),
        _ => return Err(HeaderError::Damaged),
    };
    let u16_at = |at: usize| -> Option<u32> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(u32::from(if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }))
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let mut pages = Vec::new();
    let mut next = u32_at(4).ok_or(HeaderError::Damaged)? as usize;
    let mut seen = std::collections::HashSet::new();
    while next != 0 {
        if !seen.insert(next) || pages.len() >= MAX_TIFF_PAGES {
            return Err(HeaderError::Damaged);
        }
        let entries = u16_at(next).ok_or(HeaderError::Damaged)? as usize;
        let (mut width, mut height) = (None, None);
        for entry in 0..entries {
            let at = next + 2 + entry * 12;
            let tag = u16_at(at).ok_or(HeaderError::Damaged)?;
            let value = match u16_at(at + 2).ok_or(HeaderError::Damaged)? {
                3 => u16_at(at + 8),
                4 => u32_at(at + 8),
                _ => None,
            };
            match tag {
                256 => width = value,
                257 => height = value,
                _ => {}
            }
        }
        let (width, height) = width.zip(height).ok_or(HeaderError::Damaged)?;
        pages.push(Dimensions { width, height });
        next = u32_at(next + 2 + entries * 12).ok_or(HeaderError::Damaged)? as usize;
    }
    if pages.is_empty() {
        return Err(HeaderError::Damaged);
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_dimensions_come_from_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&50_000u32.to_be_bytes());
        png.extend_from_slice(&40_000u32.to_be_bytes());
        assert_eq!(dimensions(PNG, &png), Ok(vec![Dimensions { width: 50_000, height: 40_000 }]));
        assert_eq!(dimensions(PNG, &png[..18]), Err(HeaderError::Damaged));
    }

    #[test]
    fn jpeg_dimensions_come_from_the_frame_header_after_other_segments() {
        // SOI, an APP0 segment of 16 bytes, padding, SOF0 with height 300 and width 640.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0u8; 14]);
        jpeg.extend_from_slice(&[0xFF, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x2C, 0x02, 0x80, 0x03]);
        assert_eq!(dimensions(JPEG, &jpeg), Ok(vec![Dimensions { width: 640, height: 300 }]));
        let scan_first = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        assert_eq!(dimensions(JPEG, &scan_first), Err(HeaderError::Damaged));
    }

    #[test]
    fn webp_dimensions_for_lossy_lossless_and_extended_files() {
        let riff = |chunk: &[u8], data: &[u8]| {
            let mut bytes = b"RIFF\0\0\0\0WEBP".to_vec();
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(&[0, 0, 0, 0]);
            bytes.extend_from_slice(data);
            bytes
        };
        let lossy = riff(b"VP8 ", &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x2C, 0x01]);
        assert_eq!(dimensions(WEBP, &lossy), Ok(vec![Dimensions { width: 640, height: 300 }]));
        let bits: u32 = (640 - 1) | ((300 - 1) << 14);
        let mut lossless_data = vec![0x2F];
        lossless_data.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(dimensions(WEBP, &riff(b"VP8L", &lossless_data)), Ok(vec![Dimensions { width: 640, height: 300 }]));
        let extended = riff(b"VP8X", &[0, 0, 0, 0, 0x7F, 0x02, 0x00, 0x2B, 0x01, 0x00]);
        assert_eq!(dimensions(WEBP, &extended), Ok(vec![Dimensions { width: 640, height: 300 }]));
    }

    fn tiff_page(width: u16, height: u32, next: u32) -> Vec<u8> {
        let mut ifd = 2u16.to_le_bytes().to_vec();
        ifd.extend_from_slice(&[0, 1, 3, 0, 1, 0, 0, 0]);
        ifd.extend_from_slice(&u32::from(width).to_le_bytes());
        ifd.extend_from_slice(&[1, 1, 4, 0, 1, 0, 0, 0]);
        ifd.extend_from_slice(&height.to_le_bytes());
        ifd.extend_from_slice(&next.to_le_bytes());
        ifd
    }

    #[test]
    fn tiff_dimensions_for_every_page_and_a_loop_is_damage() {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        let second = 8 + 30;
        tiff.extend(tiff_page(640, 300, second));
        tiff.extend(tiff_page(100, 70_000, 0));
        let pages = dimensions(TIFF, &tiff).unwrap();
        assert_eq!(pages, vec![Dimensions { width: 640, height: 300 }, Dimensions { width: 100, height: 70_000 }]);
        let mut looping = b"II*\0\x08\0\0\0".to_vec();
        looping.extend(tiff_page(640, 300, 8));
        assert_eq!(dimensions(TIFF, &looping), Err(HeaderError::Damaged));
    }
}
