//! The traveller's QR image (SPEC §6 `vaxpass render`).

use crate::util::{Vaxpass, keys_example_passport, tempdir};

#[test]
fn render_png_writes_a_png_file() {
    let p = keys_example_passport();
    let tmp = tempdir();
    let png = tmp.path().join("passport.png");
    let out = Vaxpass::new(["render", "--format", "png", "--out"]).arg(&png).arg(&p.text).succeeds();
    assert_eq!(out.stdout, "");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[test]
fn render_svg_from_stdin_goes_to_stdout() {
    let p = keys_example_passport();
    let out = Vaxpass::new(["render", "--format", "svg"]).stdin(format!("{}\n", p.text)).succeeds();
    assert!(out.stdout.contains("<svg"), "{:.200}", out.stdout);
}

#[test]
fn render_pdf_writes_the_certificate() {
    let p = keys_example_passport();
    let tmp = tempdir();
    let pdf = tmp.path().join("certificate.pdf");
    Vaxpass::new(["render", "--format", "pdf", "--out"]).arg(&pdf).arg(&p.text).succeeds();
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
}

#[test]
fn render_pdf_of_garbage_fails_in_one_line_naming_the_problem_once() {
    let line = Vaxpass::new(["render", "--format", "pdf", "HC1:ABC"]).fails();
    assert_eq!(line, "vaxpass: not a readable passport: zlib decompression failed or exceeded 32768 bytes");
}
