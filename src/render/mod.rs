//! Rendering a signed passport: its QR code as PNG or SVG (SPEC §3: alphanumeric mode, error
//! correction Q), and the printable bilingual PDF certificate ([`certificate_pdf`]). It knows
//! nothing of how the text was signed, verified or stored.
//!
//! QR encoding costs 10–100× a signature (STACK.md), so callers render on demand, never in
//! the signing loop unless asked.

mod pdf;

pub use pdf::certificate_pdf;

use qrcode::{EcLevel, QrCode, Version};

/// Why a QR code could not be made. Each cause is in the message, not `source()`, so that
/// it prints once.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The text does not fit in a QR code at ECC Q (more than ~3,000 alphanumeric characters).
    #[error("the text does not fit in a QR code at error correction Q: {0}")]
    TooLong(qrcode::types::QrError),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(image::ImageError),
    /// The text is not a passport whose content can be read.
    #[error("not a readable passport: {0}")]
    Passport(crate::passport::DecodeError),
    /// The PDF could not be written.
    #[error("PDF rendering failed: {0}")]
    Pdf(String),
}

impl From<qrcode::types::QrError> for RenderError {
    fn from(e: qrcode::types::QrError) -> RenderError {
        RenderError::TooLong(e)
    }
}

impl From<image::ImageError> for RenderError {
    fn from(e: image::ImageError) -> RenderError {
        RenderError::Png(e)
    }
}

impl From<crate::passport::DecodeError> for RenderError {
    fn from(e: crate::passport::DecodeError) -> RenderError {
        RenderError::Passport(e)
    }
}

/// Image formats for a passport QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    /// PNG, 8-bit grey.
    Png,
    /// SVG.
    Svg,
}

/// Pixels per QR module in PNG output: 4 px gives a ~300 px code that phones scan from
/// paper and screens alike.
const PNG_MODULE_PX: u32 = 4;

/// Encodes a passport text as a QR code at ECC Q. Base45 uses only characters of the QR
/// alphanumeric set, so the optimal segmentation qrcode picks is one alphanumeric segment.
pub fn qr_code(text: &str) -> Result<QrCode, RenderError> {
    Ok(QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q)?)
}

/// The QR version (1–40) a text needs at ECC Q.
pub fn qr_version(text: &str) -> Result<i16, RenderError> {
    Ok(match qr_code(text)?.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    })
}

/// Renders the QR code of `text` in `format`.
pub fn render_qr(text: &str, format: QrFormat) -> Result<Vec<u8>, RenderError> {
    let code = qr_code(text)?;
    match format {
        QrFormat::Svg => Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .quiet_zone(true)
            .min_dimensions(300, 300)
            .build()
            .into_bytes()),
        QrFormat::Png => {
            let img = code
                .render::<image::Luma<u8>>()
                .quiet_zone(true)
                .module_dimensions(PNG_MODULE_PX, PNG_MODULE_PX)
                .build();
            let mut out = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_a_png_and_svg_is_an_svg() {
        let text = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X*G3M9JUPY0BX/KR96R";
        let png = render_qr(text, QrFormat::Png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = String::from_utf8(render_qr(text, QrFormat::Svg).unwrap()).unwrap();
        assert!(svg.contains("<svg"));
    }

    #[test]
    fn alphanumeric_mode_gives_the_expected_version() {
        // 100 characters at ECC Q: alphanumeric capacity is 87 at v5 and 108 at v6; byte mode
        // would need v8 (108 bytes). Version 6 proves alphanumeric mode.
        let text = format!("HC1:{}", "A".repeat(96));
        assert_eq!(qr_version(&text).unwrap(), 6);
    }

    #[test]
    fn too_long_text_is_an_error() {
        assert!(matches!(render_qr(&"A".repeat(5000), QrFormat::Png), Err(RenderError::TooLong(_))));
    }
}
