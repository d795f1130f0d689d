//! Reading a passport's QR code from a photo (a border official's phone camera or an uploaded
//! picture): decode the image (PNG or JPEG), reduce very large photos, find and decode the QR
//! codes with rqrr, at smaller sizes when none is read at the photo's own ([`SCAN_SCALES`]). Bounded: the pixel count is checked before decoding, and the finder
//! patterns before rqrr pairs them up.
//!
//! Why count finder patterns: rqrr tries every plausible triple of finder patterns and copies
//! the whole image for each, so its time grows with (patterns² × pixels). A 9 KB PNG that is
//! only a lattice of finder patterns took 17 s at 800 px; a photo of a passport has 3
//! patterns (plus a few false ones in text). ZXing's detector likewise keeps only a handful of
//! candidate centres.

use std::sync::atomic::{AtomicBool, Ordering};

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
    /// More finder-pattern-like shapes than [`MAX_FINDER_CANDIDATES`]: not a photo of a few
    /// QR codes, and too costly to search.
    #[error("the image holds too many QR-code-like patterns")]
    TooManyPatterns,
    /// The caller gave up (the request timed out or the service is stopping).
    #[error("the decoding was cancelled")]
    Cancelled,
}

/// Finder-pattern candidates searched at most. Three per QR code, plus false ones: the test
/// photo of a passport (a version-15 code) has 12, nine of them in its data modules. rqrr's
/// search with 36 candidates on a 1,600 px lattice took 0.8 s (the tests below); a lattice of
/// 100 took 0.9 s at 400 px, and the cost grows with candidates² × pixels.
pub const MAX_FINDER_CANDIDATES: usize = 40;

/// Grids (triples of finder patterns that look like a QR code) decoded at most.
pub const MAX_GRIDS: usize = 8;

/// The text of the QR code in a photo; a passport (`HC1:`) is preferred when several codes
/// are visible.
pub fn qr_text_from_photo(bytes: &[u8]) -> Result<String, ScanError> {
    qr_text_from_photo_cancellable(bytes, &AtomicBool::new(false))
}

/// [`qr_text_from_photo`], stopping with [`ScanError::Cancelled`] between its stages once
/// `cancel` is set (each stage is bounded: at most ~1 s at the limits, measured in tests).
pub fn qr_text_from_photo_cancellable(bytes: &[u8], cancel: &AtomicBool) -> Result<String, ScanError> {
    let check = || if cancel.load(Ordering::Relaxed) { Err(ScanError::Cancelled) } else { Ok(()) };
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
    check()?;
    let image = if w.max(h) > SCAN_MAX_SIDE { image.thumbnail(SCAN_MAX_SIDE, SCAN_MAX_SIDE) } else { image };
    check()?;
    // rqrr misses some codes at some module sizes: a version-15 code at 8 px per module in a
    // 1,280 × 960 photo was not found in 154 of 200 random passports, at 6 px in 30 of 100
    // (1,600 × 1,200), at 4 px in none (examples/scan_scales.rs). A miss is retried with the
    // photo reduced, which changes the module size; each reduced pass costs about half the
    // one before (its pixels).
    let full = image;
    for (pass, scale) in SCAN_SCALES.iter().enumerate() {
        let (w, h) = (full.width(), full.height());
        let (sw, sh) = ((f64::from(w) * scale) as u32, (f64::from(h) * scale) as u32);
        if pass > 0 && sw.min(sh) < MIN_SCAN_SIDE {
            break;
        }
        let reduced;
        let image = if pass == 0 {
            &full
        } else {
            reduced = full.resize_exact(sw, sh, image::imageops::FilterType::Triangle);
            check()?;
            &reduced
        };
        match decode_qr(image, &check) {
            Err(ScanError::NoQrCode) => continue,
            result => return result,
        }
    }
    Err(ScanError::NoQrCode)
}

/// The sizes a photo is searched at, as fractions of its size once reduced to
/// [`SCAN_MAX_SIDE`], until a code is read. Together they cost at most 1.86 times one pass.
pub const SCAN_SCALES: [f64; 4] = [1.0, 0.7, 0.5, 0.35];

/// Shortest side below which a photo is not reduced further: a version-15 code (77 modules
/// with its quiet zone 85) still has 2 px per module in 200 px.
pub const MIN_SCAN_SIDE: u32 = 200;

trait PeekDimensions {
    fn into_dimensions_peek(self) -> Result<(u32, u32), ScanError>;
}

impl<R: std::io::BufRead + std::io::Seek> PeekDimensions for ImageReader<R> {
    fn into_dimensions_peek(self) -> Result<(u32, u32), ScanError> {
        self.into_dimensions().map_err(|_| ScanError::NotAnImage)
    }
}

fn decode_qr(image: &DynamicImage, check: &dyn Fn() -> Result<(), ScanError>) -> Result<String, ScanError> {
    let grey = image.to_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        grey.get_pixel(u32::try_from(x).unwrap_or(0), u32::try_from(y).unwrap_or(0)).0[0]
    });
    check()?;
    // rqrr's own black-and-white image, so the count sees what its detector will see.
    let black = |x: usize, y: usize| u8::from(prepared.get_pixel_at(x, y)) != 0;
    if finder_candidates(w, h, black, MAX_FINDER_CANDIDATES + 1) > MAX_FINDER_CANDIDATES {
        return Err(ScanError::TooManyPatterns);
    }
    check()?;
    let mut first = None;
    for grid in prepared.detect_grids().into_iter().take(MAX_GRIDS) {
        check()?;
        if let Ok((_, text)) = grid.decode() {
            if text.starts_with(crate::passport::HC1_PREFIX) {
                return Ok(text);
            }
            first.get_or_insert(text);
        }
    }
    first.ok_or(ScanError::NoQrCode)
}

/// Distinct finder-pattern candidates in a black-and-white image, counting stops at `stop`.
///
/// Each row is scanned for runs in the ratio 1:1:3:1:1 with rqrr's own tolerance (every
/// pattern rqrr finds starts from such a run); runs on nearby rows with nearby centres are
/// one candidate, as a pattern's centre square spans several rows. O(pixels).
pub fn finder_candidates(w: usize, h: usize, black: impl Fn(usize, usize) -> bool, stop: usize) -> usize {
    // (centre x, width of the run, last row seen)
    let mut open: Vec<(usize, usize, usize)> = Vec::new();
    let mut count = 0;
    let mut runs = [0usize; 5];
    for y in 0..h {
        // Candidates not continued for more than a pattern's height are closed.
        open.retain(|&(_, width, last)| y - last <= width);
        let mut colour = black(0, y);
        let (mut run, mut changes) = (1usize, 0usize);
        for x in 1..=w {
            // A virtual white pixel ends each row, as in rqrr.
            let c = x < w && black(x, y);
            if c == colour {
                run += 1;
                continue;
            }
            colour = c;
            runs.rotate_left(1);
            runs[4] = run;
            run = 1;
            changes += 1;
            if !c && changes >= 5 && is_finder_ratio(&runs) {
                let width: usize = runs.iter().sum();
                let centre = x - runs[4] - runs[3] - runs[2] / 2;
                if !crosses_vertically(h, &black, centre, y, width) {
                    continue;
                }
                let near = |o: &&mut (usize, usize, usize)| o.0.abs_diff(centre) <= o.1.max(width) / 7 + 1;
                if let Some(found) = open.iter_mut().find(near) {
                    found.2 = y;
                } else {
                    open.push((centre, width, y));
                    count += 1;
                    if count >= stop {
                        return count;
                    }
                }
            }
        }
    }
    count
}

/// Whether the column through `(x, y)` also reads 1:1:3:1:1 over about `width` pixels (as
/// ZXing's cross-check): the square rings of a finder pattern do, most of a QR code's data
/// modules and of printed text do not.
fn crosses_vertically(h: usize, black: &impl Fn(usize, usize) -> bool, x: usize, y: usize, width: usize) -> bool {
    let limit = width * 2;
    // Runs going up from the centre: centre black, white, outer black.
    let mut up = [0usize; 3];
    let mut yy = y as isize;
    for (i, want_black) in [true, false, true].into_iter().enumerate() {
        while yy >= 0 && black(x, yy as usize) == want_black && up[i] <= limit {
            up[i] += 1;
            yy -= 1;
        }
    }
    let mut down = [0usize; 3];
    let mut yy = y + 1;
    for (i, want_black) in [true, false, true].into_iter().enumerate() {
        while yy < h && black(x, yy) == want_black && down[i] <= limit {
            down[i] += 1;
            yy += 1;
        }
    }
    let runs = [up[2], up[1], up[0] + down[0], down[1], down[2]];
    let total: usize = runs.iter().sum();
    runs.iter().all(|&r| r > 0) && total * 2 >= width && total <= width * 2 && is_finder_ratio(&runs)
}

/// rqrr's test for a 1:1:3:1:1 run pattern (black, white, black, white, black).
fn is_finder_ratio(runs: &[usize; 5]) -> bool {
    const CHECK: [usize; 5] = [1, 1, 3, 1, 1];
    let avg = (runs[0] + runs[1] + runs[3] + runs[4]) / 4;
    let err = avg * 3 / 4;
    runs.iter().zip(CHECK).all(|(&r, k)| r + err >= k * avg && r <= k * avg + err)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A phone-like photo: a 1,280 × 960 grey JPEG with the passport's QR code (rendered at
    /// 4 px per module) scaled up and set off-centre.
    pub(crate) fn photo_of(text: &str) -> Vec<u8> {
        photo_scaled(text, 3, 2)
    }

    /// [`photo_of`] with the code scaled by `num / den` (4 px per module before).
    fn photo_scaled(text: &str, num: u32, den: u32) -> Vec<u8> {
        let png = crate::render::render_qr(text, crate::render::QrFormat::Png).unwrap();
        let qr = image::load_from_memory(&png).unwrap().to_luma8();
        let qr = image::imageops::resize(
            &qr,
            qr.width() * num / den,
            qr.height() * num / den,
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

    /// Finder-pattern candidates counted in an encoded image.
    fn candidates_in(bytes: &[u8]) -> usize {
        let grey = image::load_from_memory(bytes).unwrap().to_luma8();
        let (w, h) = (grey.width() as usize, grey.height() as usize);
        let prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| grey.get_pixel(x as u32, y as u32).0[0]);
        finder_candidates(w, h, |x, y| u8::from(prepared.get_pixel_at(x, y)) != 0, usize::MAX)
    }

    #[test]
    fn a_passport_photo_has_few_candidates_and_a_lattice_many() {
        let text = format!("HC1:{}", "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X".repeat(6));
        let photo = candidates_in(&photo_of(&text));
        let lattice = candidates_in(&finder_lattice(800, 4, 20));
        eprintln!("finder candidates: passport photo {photo}, 20 × 20 lattice {lattice}");
        assert!(photo <= MAX_FINDER_CANDIDATES / 2, "{photo}");
        assert_eq!(lattice, 400);
    }

    #[test]
    fn reads_a_passport_from_a_photo() {
        let text = format!("HC1:{}", "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X".repeat(6));
        assert_eq!(qr_text_from_photo(&photo_of(&text)), Ok(text));
    }

    #[test]
    fn a_code_missed_at_the_photos_size_is_read_from_a_reduced_copy() {
        // At 8 px per module, rqrr found no code in 154 of 200 such photos; this is one of them
        // (examples/scan_scales.rs measures the rate).
        let text = format!(
            "HC1:{}NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9\
             Y6.W*SWN -$. WW%W.CU*KSEXL20$Y3BUIPH/Q5B4Y931027-+%-B6.FZY$19H72KKUQHV%3VQO*01//B*KC7LE.D4",
            "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9G4G50PHZF0AT4V22F/8X".repeat(4)
        );
        let photo = photo_scaled(&text, 2, 1);
        let full_size = image::load_from_memory(&photo).unwrap();
        let ok = || Ok(());
        assert_eq!(
            decode_qr(&full_size, &ok),
            Err(ScanError::NoQrCode),
            "rqrr now reads this photo at full size: pick a case it misses for this test"
        );
        assert_eq!(qr_text_from_photo(&photo), Ok(text));
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

    /// A PNG that is only QR finder patterns (7 × 7 modules of `module` px), `per_side` of
    /// them along each side of a `side` px square: issue #8's photo-decoding attack.
    pub(crate) fn finder_lattice(side: u32, module: u32, per_side: u32) -> Vec<u8> {
        let mut img = image::GrayImage::from_pixel(side, side, image::Luma([255]));
        let pitch = side / per_side;
        for gy in 0..per_side {
            for gx in 0..per_side {
                let (ox, oy) = (gx * pitch + module, gy * pitch + module);
                for my in 0..7 {
                    for mx in 0..7 {
                        let ring = mx == 0 || my == 0 || mx == 6 || my == 6;
                        let centre = (2..=4).contains(&mx) && (2..=4).contains(&my);
                        if ring || centre {
                            for py in 0..module {
                                for px in 0..module {
                                    let (x, y) = (ox + mx * module + px, oy + my * module + py);
                                    if x < side && y < side {
                                        img.put_pixel(x, y, image::Luma([0]));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_lattice_of_finder_patterns_is_refused_before_the_costly_search() {
        // Issue #8: an 800 px lattice (7 KB) took 17 s in rqrr's search.
        for (side, module, per_side) in [(400, 4, 10), (800, 4, 20), (800, 8, 10)] {
            let png = finder_lattice(side, module, per_side);
            let start = std::time::Instant::now();
            assert_eq!(qr_text_from_photo(&png), Err(ScanError::TooManyPatterns), "{side} px");
            eprintln!("lattice {side} px, {per_side}² patterns, {} B: {:?}", png.len(), start.elapsed());
        }
    }

    #[test]
    fn the_worst_image_under_the_cap_stays_bounded() {
        // Nearly the most patterns allowed, over the largest image searched.
        for (module, per_side) in [(12, 6), (6, 6), (4, 6)] {
            let png = finder_lattice(SCAN_MAX_SIDE, module, per_side);
            let start = std::time::Instant::now();
            assert_eq!(qr_text_from_photo(&png), Err(ScanError::NoQrCode));
            let took = start.elapsed();
            eprintln!("{SCAN_MAX_SIDE} px, {} patterns of {module} px modules: {took:?}", per_side * per_side);
            // A bound on runaway search, not a benchmark: each lattice takes 1–3 s on an idle
            // core and took 7.5 s once on two cores shared with builds; the uncapped search
            // it guards against grows with the number of patterns (`uncapped_search_cost`).
            assert!(took < std::time::Duration::from_secs(30), "{took:?}");
        }
    }

    /// The cost without the bound (issue #8's "before"): `cargo test --lib
    /// scan::tests::uncapped -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: seconds of CPU"]
    fn uncapped_search_cost() {
        let cases: Vec<(u32, u32, u32)> = std::env::var("LATTICES").map_or_else(
            |_| vec![(400, 4, 10), (600, 4, 15)],
            |v| {
                v.split(';')
                    .map(|c| {
                        let n: Vec<u32> = c.split(',').map(|x| x.parse().unwrap()).collect();
                        (n[0], n[1], n[2])
                    })
                    .collect()
            },
        );
        for (side, module, per_side) in cases {
            let grey = image::load_from_memory(&finder_lattice(side, module, per_side)).unwrap().to_luma8();
            let start = std::time::Instant::now();
            let (w, h) = (grey.width() as usize, grey.height() as usize);
            let mut prepared =
                rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| grey.get_pixel(x as u32, y as u32).0[0]);
            let grids = prepared.detect_grids().len();
            eprintln!("uncapped: {side} px, {per_side}² patterns: {grids} grids in {:?}", start.elapsed());
        }
    }

    #[test]
    fn cancelling_stops_the_decoding() {
        let text = "HC1:NCFOXN%TS3DH3ZSUZK";
        let cancel = AtomicBool::new(true);
        assert_eq!(qr_text_from_photo_cancellable(&photo_of(text), &cancel), Err(ScanError::Cancelled));
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
