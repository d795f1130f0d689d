//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`)
//! and the corpus replay of the stable test suite (`tests/it/fuzz_corpus.rs` includes this
//! file), so that both feed an input to exactly the same library entry points.
//!
//! Every body takes arbitrary bytes and must return without panicking, in bounded time and
//! memory. Where a signature stands between the input and the code worth fuzzing (a passport's
//! claims, a trust list's content), one mode of the target signs the fuzzed bytes with the
//! development keys of `keys-example/`, so that the fuzzer reaches what only a key holder
//! could otherwise send.
//!
//! To add a target (say a decoder of another passport format): write its body here as
//! `pub fn name(data: &[u8])`, add it to [`TARGETS`], copy one of `fuzz/fuzz_targets/*.rs`
//! under the new name and add its `[[bin]]` to `fuzz/Cargo.toml`; then seed
//! `fuzz/corpus/name/` with a few real inputs. The corpus replay picks it up from [`TARGETS`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vaxpass::gate::{self, Registry};
use vaxpass::passport;
use vaxpass::pki::{self, CaFiles, SigningKey, TrustStore, bundle};
use vaxpass::verify::{ReasonCode, Verifier};

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder of its corpus, the name of its fuzz binary) and body.
pub const TARGETS: [(&str, Body); 8] = [
    ("hc1_verify", hc1_verify),
    ("cbor_json", cbor_json),
    ("cose_cwt", cose_cwt),
    ("dose_row", dose_row),
    ("trust_bundle", trust_bundle),
    ("photo", photo),
    ("shc_verify", shc_verify),
    ("vdsnc_verify", vdsnc_verify),
];

/// The verification clock: inside keys-example's facility certificates (2026-11-30 to
/// 2028-11-29). Fixed, so that a crash replays whatever the date.
pub const AT: time::OffsetDateTime = time::macros::datetime!(2027-06-01 0:00 UTC);

/// `keys-example/` of the repository, from the fuzz crate (`fuzz/`) or the main crate.
fn keys_example() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("keys-example"), here.join("../keys-example")]
        .into_iter()
        .find(|p| p.is_dir())
        .expect("keys-example/ next to the fuzz crate")
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut trust = TrustStore::new();
        trust.load_trusted(&keys_example()).unwrap();
        Verifier::new(trust, pki::Revocations::default())
    })
}

/// facility-01001's key and kid.
fn facility() -> &'static (SigningKey, Vec<u8>) {
    static F: OnceLock<(SigningKey, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = keys_example().join("facility-01001");
        let key = SigningKey::load(&dir.join("key.pem")).unwrap();
        let cert = pki::parse_certificates(&std::fs::read(dir.join("cert.pem")).unwrap(), true).unwrap().remove(0);
        (key, cert.kid.0.to_vec())
    })
}

/// A CBOR head (RFC 8949 §3) of major type `major` with argument `n`.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// `HC1:` text of a COSE_Sign1 over `payload`, signed ES256 by facility-01001, as a
/// signer that puts any bytes it likes in the claims would make it.
fn signed_hc1(payload: &[u8]) -> String {
    let (key, kid) = facility();
    let mut protected = vec![0xa2, 0x01, 0x26, 0x04];
    cbor_bytes(&mut protected, kid);
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    cbor_bytes(&mut tbs, &protected);
    cbor_bytes(&mut tbs, &[]);
    cbor_bytes(&mut tbs, payload);
    let signature = key.sign(&tbs).unwrap();
    let mut cose = vec![0xd2, 0x84];
    cbor_bytes(&mut cose, &protected);
    cose.push(0xa0);
    cbor_bytes(&mut cose, payload);
    cbor_bytes(&mut cose, &signature);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&cose).unwrap();
    format!("{}{}", passport::HC1_PREFIX, base45::encode(z.finish().unwrap()))
}

/// `HC1:` text → verdict. First byte even: the rest is the text as scanned (not UTF-8 is
/// replaced, as a QR reader would). Odd: the rest is a CWT payload, validly signed by a
/// keys-example facility, so that the claims and the checks after the signature are reached.
pub fn hc1_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let verdict = verifier().verify(&text, AT);
        // Without a facility's key, nothing a fuzzer writes can be a valid passport.
        assert_ne!(verdict.reason, ReasonCode::Ok, "an unsigned text was accepted");
    } else {
        if rest.len() > passport::MAX_INFLATED_LEN {
            return;
        }
        let verdict = verifier().verify(&signed_hc1(rest), AT);
        if verdict.valid {
            // Whatever was accepted must read back as claims of the right shape.
            let claims = passport::parse_claims(rest).expect("an accepted payload decodes");
            passport::check_schema(&claims.dcc).expect("an accepted payload has the schema's shape");
        }
    }
}

/// The CBOR-to-JSON reader of the claims. What it accepts must serialise as JSON.
pub fn cbor_json(data: &[u8]) {
    if let Ok(json) = passport::cbor_to_json(data) {
        let text = serde_json::to_string(&json).unwrap();
        // Output is bounded by the input: base64 grows bytes by 4/3, a key's decimal or JSON
        // text by a constant factor; a reader that expanded an input 100-fold would be a bug.
        assert!(text.len() <= 64 + 100 * data.len(), "{} bytes of JSON from {}", text.len(), data.len());
    }
}

/// COSE_Sign1 parsing, then the CWT claims it carries; and the bytes as a CWT payload too.
pub fn cose_cwt(data: &[u8]) {
    if let Ok(cose) = passport::parse_cose(data)
        && let Ok(claims) = cose.claims()
    {
        let _ = passport::check_schema(&claims.dcc);
    }
    if let Ok(claims) = passport::parse_claims(data) {
        let _ = passport::check_schema(&claims.dcc);
    }
}

/// The registry of the `dose_row` target: the identities its seeds use.
fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let csv = "id_number,old_id,full_name,dob,sex,previous_ids\n\
                   001090000001,,Nguyễn Văn An,02/01/1990,Nam,\n\
                   079185000002,023456789,Trần Thị Bình,1985,Nữ,001185000009\n\
                   048200000003,,Lê Hoàng,2000-07,M,\n";
        Registry::load(csv.as_bytes(), "registry.csv").unwrap()
    })
}

/// The header of `doses.csv` put in front of the `dose_row` target's rows.
pub const DOSES_HEADER: &str =
    "record_id,facility_code,id_number,full_name,dob,sex,nationality,vaccine,vaccination_date\n";

/// `doses.csv` rows through the per-row checks. First byte: bit 0 checks against a small
/// registry (else offline); bit 1 takes the rest as a whole file, header included (else
/// the rest are rows under [`DOSES_HEADER`]).
pub fn dose_row(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let registry = (mode & 1 == 1).then(registry);
    let today = AT.date();
    if mode & 2 == 2 {
        let _ = gate::check_dose_rows(rest, registry, today);
    } else {
        let mut csv = DOSES_HEADER.as_bytes().to_vec();
        csv.extend_from_slice(rest);
        gate::check_dose_rows(&csv, registry, today).expect("the header is complete");
    }
}

/// keys-example's root, pinned by a verifier device.
fn anchors() -> &'static TrustStore {
    static A: OnceLock<TrustStore> = OnceLock::new();
    A.get_or_init(|| {
        let mut trust = TrustStore::new();
        trust.load_trusted(&keys_example().join("root/cert.pem")).unwrap();
        trust
    })
}

/// A trust-list signer of keys-example's root (issued once per process), and its PEM.
fn list_signer() -> &'static (SigningKey, String) {
    static S: OnceLock<(SigningKey, String)> = OnceLock::new();
    S.get_or_init(|| {
        let root = keys_example().join("root");
        let ca = CaFiles::load(&root.join("key.pem"), &root.join("cert.pem")).unwrap();
        let issued = pki::issue_trust_list_signer(&ca, 30, AT - time::Duration::days(1)).unwrap();
        let key = SigningKey::from_pem(Path::new("signer"), issued.key_pem.unwrap().as_bytes()).unwrap();
        (key, issued.cert_pem)
    })
}

/// The signed trust list a verifier device opens. First byte even: the rest is the envelope
/// as downloaded. Odd: the rest is the bundle JSON, sealed by a valid trust-list signer, so
/// that the content checks are reached (any age accepted, so that `issued_at` need not be
/// guessed).
pub fn trust_bundle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let at = AT.unix_timestamp();
    if mode % 2 == 0 {
        let _ = bundle::open(rest, anchors(), at, None, bundle::DEFAULT_MAX_AGE_SECS);
    } else {
        let (key, cert_pem) = list_signer();
        let b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        };
        let envelope = serde_json::json!({
            "bundle": b64(rest),
            "signature": b64(&key.sign(rest).unwrap()),
            "certificate": cert_pem,
        });
        let _ = bundle::open(envelope.to_string().as_bytes(), anchors(), at, Some(1), i64::MAX);
    }
}

/// Photo decoding (PNG or JPEG) and the QR search, as the border page's upload.
pub fn photo(data: &[u8]) {
    let _ = vaxpass::scan::qr_text_from_photo(data);
}

/// The SMART Health Card issuer of [`border_verifier`]: its `iss`.
pub const SHC_ISS: &str = "https://fuzz.vaxpass.example/issuer";

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// facility-01001's key as the SMART Health Card issuer's JWK: its RFC 7638 thumbprint (the
/// kid a card names) and the issuer directory trusting it.
fn shc_issuer() -> &'static (String, String) {
    static I: OnceLock<(String, String)> = OnceLock::new();
    I.get_or_init(|| {
        let point = facility().0.public_point();
        let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
        let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = b64url(ring::digest::digest(&ring::digest::SHA256, thumbprint.as_bytes()).as_ref());
        let directory = serde_json::json!({"participating_issuers": [{"iss": SHC_ISS, "name": "Fuzz issuer",
            "keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid}],
            "crls": [{"kid": kid, "method": "rid", "ctr": 1, "rids": ["revoked-rid"]}]}]});
        (kid, directory.to_string())
    })
}

/// A border verifier for the new formats: facility-01001 as a trusted SMART Health Card
/// issuer (see [`shc_issuer`]), and keys-example's provincial CA 01 pinned as a country
/// signing CA, so that facility-01001's certificate can sign VDS-NC seals.
pub fn border_verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut trust = TrustStore::new();
        let csca = std::fs::read(keys_example().join("ca-01/cert.pem")).unwrap();
        for cert in pki::parse_certificates(&csca, true).unwrap() {
            trust.add_pinned(cert);
        }
        let issuers = vaxpass::verify::ShcDirectory::from_json(shc_issuer().1.as_bytes()).unwrap();
        Verifier::new(trust, pki::Revocations::default()).with_issuers(issuers)
    })
}

/// `shc:/` text of a compact JWS over `payload` (raw DEFLATE), signed ES256 by the issuer of
/// [`border_verifier`], as an issuer that puts any bytes it likes in a card would make it.
pub fn signed_shc(payload: &[u8]) -> String {
    let header = format!(r#"{{"zip":"DEF","alg":"ES256","kid":"{}"}}"#, shc_issuer().0);
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(payload).unwrap();
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(&z.finish().unwrap()));
    let signature = facility().0.sign(input.as_bytes()).unwrap();
    // SMART Health Cards' numeric mode: each character as two digits, its code minus 45.
    let mut text = vaxpass::verify::SHC_PREFIX.to_owned();
    for c in format!("{input}.{}", b64url(&signature)).bytes() {
        text.push_str(&format!("{:02}", c.saturating_sub(45)));
    }
    text
}

/// SMART Health Card text → verdict. First byte even: the rest is the text as scanned (not
/// UTF-8 is replaced). Odd: the rest is the JWS payload (JSON before DEFLATE), validly signed
/// by a trusted issuer, so that the content checks after the signature are reached.
pub fn shc_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let verdict = border_verifier().verify(&String::from_utf8_lossy(rest), AT);
        assert_ne!(verdict.reason, ReasonCode::Ok, "an unsigned card was accepted");
    } else {
        if rest.len() > vaxpass::verify::MAX_SHC_INFLATED_LEN {
            return;
        }
        let verdict = border_verifier().verify(&signed_shc(rest), AT);
        if verdict.valid {
            // Whatever was accepted was read as a card, with the payload shown.
            assert!(verdict.format.is_some() && verdict.payload.is_some(), "an accepted card without its payload");
        }
    }
}

/// The certificate facility-01001 signs seals with, base64url DER.
fn seal_signer_cer() -> &'static str {
    static C: OnceLock<String> = OnceLock::new();
    C.get_or_init(|| {
        let pem = std::fs::read(keys_example().join("facility-01001/cert.pem")).unwrap();
        b64url(pki::parse_certificates(&pem, true).unwrap()[0].der())
    })
}

/// ICAO VDS-NC seal text around `data` (the JSON text of its `data` member, put in
/// verbatim), signed ES256 over the RFC 8785 form of `data` by facility-01001's certificate,
/// which [`border_verifier`]'s pinned CA issued. When `data` is not JSON, the signature is over
/// its bytes (the seal then fails to parse anyway).
pub fn signed_seal(data: &str) -> String {
    let signed = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| serde_json_canonicalizer::to_vec(&v).ok())
        .unwrap_or_else(|| data.as_bytes().to_vec());
    let signature = facility().0.sign(&signed).unwrap();
    format!(
        r#"{{"data":{data},"sig":{{"alg":"ES256","cer":"{}","sigvl":"{}"}}}}"#,
        seal_signer_cer(),
        b64url(&signature)
    )
}

/// ICAO VDS-NC seal text → verdict. First byte even: the rest is the seal as scanned (not
/// UTF-8 is replaced). Odd: the rest is the seal's `data`, validly signed by a certificate of
/// a pinned CSCA (see [`signed_seal`]), so that the checks after the signature are reached.
pub fn vdsnc_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let verdict = border_verifier().verify(&String::from_utf8_lossy(rest), AT);
        assert_ne!(verdict.reason, ReasonCode::Ok, "an unsigned seal was accepted");
    } else {
        if rest.len() > vaxpass::verify::MAX_SEAL_LEN {
            return;
        }
        let verdict = border_verifier().verify(&signed_seal(&String::from_utf8_lossy(rest)), AT);
        if verdict.valid {
            assert!(verdict.format.is_some() && verdict.payload.is_some(), "an accepted seal without its payload");
        }
    }
}
