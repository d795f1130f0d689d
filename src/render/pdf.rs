//! The printable certificate: A4, in Vietnamese and English, with the passport's QR code and
//! the 11 fields of the EU vaccination certificate that Decision 5772/QĐ-BYT's form carries
//! (name, date of birth, disease, vaccine type, product, manufacturer, dose in series, date,
//! country, issuer, certificate identifier), then the whole dose series. DejaVu Sans is
//! embedded (subset): it has every Vietnamese letter, so names print as registered.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{Point, Size, Transform};
use krilla::image::Image;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use serde_json::Value;

use super::{QrFormat, RenderError, render_qr};
use crate::passport;

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 48.0;

/// Display names of the value-set codes a Vietnamese passport uses (EU eHN value sets 2.12).
fn display(code: &str) -> &str {
    match code {
        "840539006" => "COVID-19",
        "J07BX03" => "covid-19 vaccines",
        "1119349007" => "SARS-CoV-2 mRNA vaccine",
        "1119305005" => "SARS-CoV-2 antigen vaccine",
        "EU/1/21/1529" => "Vaxzevria (AstraZeneca)",
        "EU/1/20/1528" => "Comirnaty (Pfizer-BioNTech)",
        "EU/1/20/1507" => "Spikevax (Moderna)",
        "EU/1/20/1525" => "Jcovden (Janssen)",
        "BBIBP-CorV" => "BBIBP-CorV (Vero Cell, Sinopharm)",
        "Hayat-Vax" => "Hayat-Vax",
        "Sputnik-V" => "Sputnik V",
        "Abdala" => "Abdala",
        "ORG-100001699" => "AstraZeneca AB",
        "ORG-100030215" => "Biontech Manufacturing GmbH",
        "ORG-100031184" => "Moderna Biotech Spain S.L.",
        "ORG-100001417" => "Janssen-Cilag International",
        "ORG-100020693" => "China Sinopharm International Corp. - Beijing location",
        "ORG-100023050" => "Gulf Pharmaceutical Industries",
        "Gamaleya-Research-Institute" => "Gamaleya Research Institute",
        "CIGB" => "Center for Genetic Engineering and Biotechnology (CIGB)",
        "VN" => "Việt Nam / Viet Nam",
        other => other,
    }
}

struct Pen<'a, 'b> {
    surface: &'a mut Surface<'b>,
    regular: Font,
    bold: Font,
}

impl Pen<'_, '_> {
    fn color(&mut self, r: u8, g: u8, b: u8) {
        self.surface.set_fill(Some(Fill {
            paint: rgb::Color::new(r, g, b).into(),
            opacity: NormalizedF32::ONE,
            rule: Default::default(),
        }));
    }

    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let font = if bold { self.bold.clone() } else { self.regular.clone() };
        self.surface.draw_text(Point::from_xy(x, y), font, size, text, false, TextDirection::Auto);
    }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn date_of(epoch: Option<f64>) -> String {
    epoch
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok())
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

/// The certificate of the passport `hc1` as a PDF. The content is read from the passport
/// itself (it is our own, from our store; the signature is not checked here).
pub fn certificate_pdf(hc1: &str) -> Result<Vec<u8>, RenderError> {
    let claims = passport::decode(hc1)?.claims()?;
    let dcc = &claims.dcc;
    let latest = dcc.get("v").and_then(|v| v.get(0)).cloned().unwrap_or(Value::Null);
    let mut doses: Vec<Value> = claims.history.as_ref().and_then(Value::as_array).cloned().unwrap_or_default();
    doses.push(latest.clone());
    let png = render_qr(hc1, QrFormat::Png)?;
    let name = [field(&dcc["nam"], "fn"), field(&dcc["nam"], "gn")]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let transliterated = [field(&dcc["nam"], "fnt"), field(&dcc["nam"], "gnt")].join("<<");

    let font = |data: &'static [u8]| Font::new(data.to_vec().into(), 0).ok_or_else(|| RenderError::Pdf("font".into()));
    let (regular, bold) = (font(REGULAR)?, font(BOLD)?);
    let mut document = Document::new();
    {
        let mut page = document.start_page_with(PageSettings::new(PAGE.0, PAGE.1));
        let mut surface = page.surface();
        let mut pen = Pen { surface: &mut surface, regular, bold };

        pen.color(150, 30, 30);
        pen.text(MARGIN, 60.0, 10.0, true, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM · BỘ Y TẾ");
        pen.color(90, 90, 90);
        pen.text(MARGIN, 74.0, 8.5, false, "Socialist Republic of Viet Nam · Ministry of Health");
        pen.color(20, 30, 45);
        pen.text(MARGIN, 108.0, 17.0, true, "GIẤY CHỨNG NHẬN TIÊM CHỦNG COVID-19");
        pen.color(90, 90, 90);
        pen.text(MARGIN, 126.0, 11.0, false, "COVID-19 VACCINATION CERTIFICATE");

        let qr = Image::from_png(png.into(), false).ok_or_else(|| RenderError::Pdf("QR image".into()))?;
        let side = 200.0;
        pen.surface.push_transform(&Transform::from_translate(PAGE.0 - MARGIN - side, 140.0));
        pen.surface.draw_image(qr, Size::from_wh(side, side).ok_or_else(|| RenderError::Pdf("size".into()))?);
        pen.surface.pop();

        let dose = format!(
            "{} / {}",
            latest.get("dn").map(Value::to_string).unwrap_or_default(),
            latest.get("sd").map(Value::to_string).unwrap_or_default()
        );
        let rows: [(&str, &str, String); 11] = [
            ("Họ và tên", "Name", name.clone()),
            ("Ngày sinh", "Date of birth", field(dcc, "dob").to_owned()),
            ("Bệnh được phòng", "Disease or agent targeted", display(field(&latest, "tg")).to_owned()),
            ("Loại vắc xin", "Vaccine or prophylaxis", display(field(&latest, "vp")).to_owned()),
            ("Tên vắc xin", "Vaccine medicinal product", display(field(&latest, "mp")).to_owned()),
            ("Nhà sản xuất", "Manufacturer", display(field(&latest, "ma")).to_owned()),
            ("Mũi tiêm / tổng số mũi", "Dose number / total in series", dose),
            ("Ngày tiêm", "Date of vaccination", field(&latest, "dt").to_owned()),
            ("Nước tiêm", "Country of vaccination", display(field(&latest, "co")).to_owned()),
            ("Đơn vị cấp", "Certificate issuer", field(&latest, "is").to_owned()),
            ("Mã chứng nhận", "Unique certificate identifier", field(&latest, "ci").to_owned()),
        ];
        let mut y = 165.0;
        for (vi, en, value) in &rows {
            pen.color(20, 30, 45);
            pen.text(MARGIN, y, 9.0, true, vi);
            pen.color(110, 110, 110);
            pen.text(MARGIN, y + 11.0, 7.5, false, en);
            pen.color(0, 0, 0);
            // Long values (issuer, UVCI) go under the QR code's column only when it has ended.
            let x = MARGIN + 125.0;
            let size = if value.chars().count() > 34 && y < 350.0 { 8.5 } else { 11.0 };
            pen.text(x, y + 4.0, size, false, value);
            y += 30.0;
        }
        pen.color(90, 90, 90);
        pen.text(MARGIN, y + 2.0, 8.0, false, &format!("MRZ: {transliterated}"));

        y += 30.0;
        pen.color(20, 30, 45);
        pen.text(MARGIN, y, 11.0, true, "Các mũi đã tiêm · Doses received");
        y += 18.0;
        for d in &doses {
            pen.color(0, 0, 0);
            let line = format!(
                "{}/{}   {}   {}",
                d.get("dn").map(Value::to_string).unwrap_or_default(),
                d.get("sd").map(Value::to_string).unwrap_or_default(),
                field(d, "dt"),
                display(field(d, "mp"))
            );
            pen.text(MARGIN + 8.0, y, 10.0, false, &line);
            y += 15.0;
        }

        pen.color(90, 90, 90);
        pen.text(
            MARGIN,
            PAGE.1 - 70.0,
            9.0,
            false,
            &format!("Hiệu lực đến · Valid until: {}", date_of(claims.expires_at)),
        );
        pen.text(
            MARGIN,
            PAGE.1 - 56.0,
            8.0,
            false,
            "Quét mã QR để kiểm tra chữ ký số · Scan the QR code to verify the digital signature (EU DCC compatible).",
        );
    }
    document.finish().map_err(|e| RenderError::Pdf(format!("{e:?}")))
}
