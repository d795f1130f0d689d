//! The printable certificate, rendered to an image with poppler (Debian's poppler-utils): the
//! font is embedded, the name is there with its diacritics, and the diacritics are drawn.

use std::path::Path;
use std::process::Command;

use vaxpass::passport::{self, Algorithm, Dose, PassportContent, Person, Uvci, number_doses, vaccines};
use vaxpass::pki::{SigningKey, parse_certificates};

use crate::util::{Vaxpass, keys_example, tempdir};

fn passport_named(name: &str) -> String {
    let dir = keys_example().join("facility-01001");
    let key = SigningKey::load(&dir.join("key.pem")).unwrap();
    let dsc = parse_certificates(&std::fs::read(dir.join("cert.pem")).unwrap(), true).unwrap().remove(0);
    let doses = [
        Dose { vaccine: vaccines::lookup("Vero Cell").unwrap(), date: time::macros::date!(2021 - 08 - 01) },
        Dose { vaccine: vaccines::lookup("Vero Cell").unwrap(), date: time::macros::date!(2021 - 09 - 01) },
    ];
    let now = crate::util::KEYS_EXAMPLE_NOW;
    let content = PassportContent {
        person: Person { full_name: name.into(), dob: "1985-03-04".into() },
        doses: number_doses(&doses),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: Uvci::new("01001", "PDFPDFPDFPDFPDF2").unwrap(),
        issued_at: now,
        expires_at: now + 86_400,
        include_history: true,
    };
    passport::sign(&content, Algorithm::Es256, &dsc.kid.0, |m| key.sign(m)).unwrap().unwrap()
}

#[track_caller]
fn tool(name: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} (Debian poppler-utils; scripts/test installs it): {e}"));
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Dark pixels of the name's line on page 1 rendered at 150 dpi: the value column from
/// x = 173 pt to the QR code at 347 pt, around the first row's baseline at 169 pt (see
/// render/pdf.rs), from the accents above to the dot-below marks.
fn name_ink(pdf: &Path, dir: &Path) -> usize {
    let prefix = dir.join("page");
    tool("pdftoppm", &["-png".as_ref(), "-r".as_ref(), "150".as_ref(), pdf.as_os_str(), prefix.as_os_str()]);
    let png = image::open(dir.join("page-1.png")).unwrap().to_luma8();
    assert_eq!((png.width(), png.height()), (1240, 1755), "A4 (595 x 842 pt) at 150 dpi");
    let to_px = |pt: f32| (pt * 150.0 / 72.0) as u32;
    let (x0, x1, y0, y1) = (to_px(173.0), to_px(340.0), to_px(169.0 - 15.0), to_px(169.0 + 5.0));
    (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|&(x, y)| png.get_pixel(x, y).0[0] < 128).count()
}

#[test]
fn certificate_shows_the_name_with_its_diacritics() {
    let dir = tempdir();
    let (accented, plain) = (dir.path().join("accented"), dir.path().join("plain"));
    std::fs::create_dir_all(&accented).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    let name = "Đặng Thị Ngọc Ánh";
    for (text, sub) in [(passport_named(name), &accented), (passport_named("Dang Thi Ngoc Anh"), &plain)] {
        Vaxpass::new(["render", "--format", "pdf", "--out"]).arg(sub.join("cert.pdf")).arg(text).succeeds();
    }
    let pdf = accented.join("cert.pdf");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));

    let fonts = tool("pdffonts", &[pdf.as_os_str()]);
    assert!(fonts.contains("DejaVuSans"), "{fonts}");
    for line in fonts.lines().filter(|l| l.contains("DejaVu")) {
        assert!(line.split_whitespace().filter(|w| *w == "yes").count() >= 2, "embedded and subset: {line}");
    }
    let text = tool("pdftotext", &["-layout".as_ref(), pdf.as_os_str(), "-".as_ref()]);
    assert!(text.contains(name), "{text}");
    for label in
        ["Họ và tên", "Name", "Ngày tiêm", "Date of vaccination", "Mã chứng nhận", "Unique certificate identifier"]
    {
        assert!(text.contains(label), "{label}");
    }

    let (with_marks, without) = (name_ink(&pdf, &accented), name_ink(&plain.join("cert.pdf"), &plain));
    assert!(without > 200, "the name line was found ({without} dark pixels)");
    assert!(with_marks > without + 30, "diacritics drawn: {with_marks} vs {without} dark pixels");
}
