//! How often a passport's QR code is read from a synthetic photo, by module size: the measure
//! behind `scan::SCAN_SCALES`. Each case renders a random-content `HC1:` text of a 3-dose
//! passport's length (a version-15 code) at 4 px per module, scales it, sets it on a grey
//! canvas, saves it as JPEG and reads it back with `scan::qr_text_from_photo`.
//!
//! `cargo run --release --example scan_scales [cases per size]` (default 100).

use std::time::Instant;

use vaxpass::render;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cases: u32 = std::env::args().nth(1).map_or(Ok(100), |n| n.parse())?;
    let base = "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X".repeat(6);
    let alphabet: Vec<char> = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".chars().collect();
    // A fixed linear congruential sequence: the same texts on every run.
    let mut seed: u64 = 12345;
    for (canvas, at) in [((1280, 960), (300, 150)), ((1600, 1200), (30, 20))] {
        for (num, den) in [(1u32, 1u32), (5, 4), (3, 2), (7, 4), (2, 1), (9, 4), (5, 2), (3, 1), (7, 2)] {
            let (mut failed, mut fitted) = (0, 0);
            let start = Instant::now();
            for _ in 0..cases {
                let mut text: Vec<char> = base.chars().collect();
                for c in text.iter_mut().rev().take(90) {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *c = alphabet[((seed >> 33) % 45) as usize];
                }
                let text = format!("HC1:{}", text.into_iter().collect::<String>());
                let Some(photo) = photo(&text, num, den, canvas, at)? else { continue };
                fitted += 1;
                if vaxpass::scan::qr_text_from_photo(&photo).ok().as_deref() != Some(text.as_str()) {
                    failed += 1;
                }
            }
            if fitted > 0 {
                println!(
                    "{}x{} canvas, {:.1} px per module: {failed}/{fitted} not read, {:.1} ms each (with rendering)",
                    canvas.0,
                    canvas.1,
                    4.0 * f64::from(num) / f64::from(den),
                    start.elapsed().as_secs_f64() * 1000.0 / f64::from(fitted)
                );
            }
        }
    }
    Ok(())
}

/// A JPEG of the code scaled by `num / den` at `at` on a grey canvas, or `None` if it does
/// not fit.
type Photo = Result<Option<Vec<u8>>, Box<dyn std::error::Error>>;

fn photo(text: &str, num: u32, den: u32, canvas: (u32, u32), at: (i64, i64)) -> Photo {
    let png = render::render_qr(text, render::QrFormat::Png)?;
    let qr = image::load_from_memory(&png)?.to_luma8();
    let (w, h) = (qr.width() * num / den, qr.height() * num / den);
    if at.0 + i64::from(w) > i64::from(canvas.0) || at.1 + i64::from(h) > i64::from(canvas.1) {
        return Ok(None);
    }
    let qr = image::imageops::resize(&qr, w, h, image::imageops::FilterType::Triangle);
    let mut page = image::GrayImage::from_pixel(canvas.0, canvas.1, image::Luma([200]));
    image::imageops::overlay(&mut page, &qr, at.0, at.1);
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(page).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)?;
    Ok(Some(out))
}
