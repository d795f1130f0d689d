//! Reading a passport's QR code from a photo (a border official's phone camera or an uploaded
//! picture): decode the image (PNG or JPEG), reduce very large photos, find and decode the QR
//! codes with rqrr. Bounded: the pixel count is checked before decoding.

use image::{DynamicImage, ImageReader, Limits};

/// Largest photo accepted, in pixels: 16 MP covers what phone cameras save by default (12 MP,
/// 48 MP sensors bin to 12); each decode holds up to 4 bytes a pixel, so this bounds one
/// upload to 64 MB, and the service runs at most one decode per core.
pub const MAX_PHOTO_PIXELS: u64 = 16_000_000;

/// Photos larger than this (longest side, pixels) are reduced before searching: a QR code
/// that fills a sixth of a 1,600 px frame still has 3+ pixels per module at version 20, and
/// searching costs grow with the pixel count.
pub const SCAN_MAX_SIDE: u32 = 1600;

/// Why no QR text came out of a photo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    /// Not a PNG or JPEG image, or a corrupt one.
    #[error("not a readable PNG or JPEG image")]
    NotAnImage,
    /// More pixels than [`MAX_PHOTO_PIXELS`].
    #[error("the image is larger than {MAX_PHOTO_PIXELS} pixels")]
    TooLarge,
    /// No QR code could be decoded.
    #[error("no QR code could be read in the image")]
    NoQrCode,
}

/// The text of the QR code in a photo; a passport (`HC1:`) is preferred when several codes
/// are visible.
pub fn qr_text_from_photo(bytes: &[u8]) -> Result<String, ScanError> {
    let mut reader =
        ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|_| ScanError::NotAnImage)?;
    let (w, h) = reader.into_dimensions_peek()?;
    if u64::from(w) * u64::from(h) > MAX_PHOTO_PIXELS {
        return Err(ScanError::TooLarge);
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PHOTO_PIXELS * 4);
    reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|_| ScanError::NotAnImage)?;
    reader.limits(limits);
    let image = reader.decode().map_err(|_| ScanError::NotAnImage)?;
    let image = if w.max(h) > SCAN_MAX_SIDE { image.thumbnail(SCAN_MAX_SIDE, SCAN_MAX_SIDE) } else { image };
    decode_qr(&image)
}

trait PeekDimensions {
    fn into_dimensions_peek(self) -> Result<(u32, u32), ScanError>;
}

impl<R: std::io::BufRead + std::io::Seek> PeekDimensions for ImageReader<R> {
    fn into_dimensions_peek(self) -> Result<(u32, u32), ScanError> {
        self.into_dimensions().map_err(|_| ScanError::NotAnImage)
    }
}

fn decode_qr(image: &DynamicImage) -> Result<String, ScanError> {
    let grey = image.to_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        grey.get_pixel(u32::try_from(x).unwrap_or(0), u32::try_from(y).unwrap_or(0)).0[0]
    });
    let mut first = None;
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            if text.starts_with(crate::passport::HC1_PREFIX) {
                return Ok(text);
            }
            first.get_or_insert(text);
        }
    }
    first.ok_or(ScanError::NoQrCode)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A phone-like photo: a 1,280 × 960 grey JPEG with the passport's QR code (rendered at
    /// 4 px per module) scaled up and set off-centre.
    pub(crate) fn photo_of(text: &str) -> Vec<u8> {
        let png = crate::render::render_qr(text, crate::render::QrFormat::Png).unwrap();
        let qr = image::load_from_memory(&png).unwrap().to_luma8();
        let qr = image::imageops::resize(
            &qr,
            qr.width() * 3 / 2,
            qr.height() * 3 / 2,
            image::imageops::FilterType::Triangle,
        );
        let mut canvas = image::GrayImage::from_pixel(1280, 960, image::Luma([200]));
        image::imageops::overlay(&mut canvas, &qr, 300, 150);
        let mut out = Vec::new();
        image::DynamicImage::ImageLuma8(canvas)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn reads_a_passport_from_a_photo() {
        let text = format!("HC1:{}", "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X".repeat(6));
        assert_eq!(qr_text_from_photo(&photo_of(&text)), Ok(text));
    }

    #[test]
    fn not_an_image_and_no_code_are_told_apart() {
        assert_eq!(qr_text_from_photo(b"HC1:not a picture"), Err(ScanError::NotAnImage));
        let mut blank = Vec::new();
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(64, 64, image::Luma([255])))
            .write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(qr_text_from_photo(&blank), Err(ScanError::NoQrCode));
    }

    #[test]
    fn huge_dimensions_are_refused_before_decoding() {
        // A PNG header claiming 5,000 × 5,000 pixels (25 MP).
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(image::GrayImage::new(1, 1))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&5_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&5_000u32.to_be_bytes());
        // The IHDR chunk's CRC-32 covers its type and data (bytes 12..29).
        let crc = png[12..29].iter().fold(!0u32, |mut c, &b| {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
            c
        });
        png[29..33].copy_from_slice(&(!crc).to_be_bytes());
        assert_eq!(qr_text_from_photo(&png), Err(ScanError::TooLarge));
    }
}
