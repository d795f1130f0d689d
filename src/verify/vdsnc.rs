//! ICAO VDS-NC (SPEC §9.1; ICAO "Visible Digital Seals for Non-Constrained Environments",
//! 2021): the seal's JSON `{"data": {"hdr", "msg"}, "sig": {"alg", "cer", "sigvl"}}`.
//! ECDSA over the RFC 8785 canonical form of `data` with the key of the signer certificate
//! in `sig.cer`; that certificate must be issued by a pinned country signing CA (CSCA), be
//! valid at the clock, and belong to the seal's issuing country (`hdr.is`).
//!
//! Path checks are cached per signer certificate (a CSCA signature is an RSA-4096 or P-384
//! verification, 0.1–1 ms); a seal then costs its own ECDSA verification plus reading and
//! canonicalising ~1 KB of JSON.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ::time::OffsetDateTime;
use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use super::normalised::{self, Failure, Format, Holder, Read, Vaccination};
use super::{ReasonCode, SignerInfo, Verdict, json};

/// Largest seal text read. A QR code holds at most 2,953 bytes; seals copied from files are
/// often pretty-printed, so twice that and more is allowed, and nothing beyond.
pub const MAX_SEAL_LEN: usize = 16 * 1024;
/// Signer certificates whose checks are remembered; the cache is emptied when full, so a
/// stream of made-up certificates costs time, never memory.
const MAX_CACHED_SIGNERS: usize = 256;

fn invalid(detail: &str) -> Failure {
    (ReasonCode::FormatInvalid, detail.to_owned())
}

/// The curves ring verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

/// A public key as the checks here need it.
#[derive(Debug, Clone)]
enum Key {
    Ec(Curve, Vec<u8>),
    /// PKCS#1 RSAPublicKey DER.
    Rsa(Vec<u8>),
    Other,
}

const P256_PRIME: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];
const P384_PRIME_TAIL: [u8; 20] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0xff,
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The key of a SubjectPublicKeyInfo. ICAO CSCAs (Japan's among them) often spell their
/// curve as explicit parameters rather than a named-curve OID: the P-256 and P-384 primes
/// are recognised in them.
fn key_of(spki: &SubjectPublicKeyInfo<'_>) -> Key {
    let alg = spki.algorithm.algorithm.to_id_string();
    let bits = spki.subject_public_key.data.to_vec();
    match alg.as_str() {
        "1.2.840.10045.2.1" => {
            let named = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            let curve = match named.as_deref() {
                Some("1.2.840.10045.3.1.7") => Some(Curve::P256),
                Some("1.3.132.0.34") => Some(Curve::P384),
                // asn1-rs reads explicit parameters (a SEQUENCE) as some OID too: any other
                // value is searched for the primes.
                _ if contains(spki.raw, &P256_PRIME) => Some(Curve::P256),
                _ if contains(spki.raw, &[[0xff; 28].as_slice(), &P384_PRIME_TAIL].concat()) => Some(Curve::P384),
                _ => None,
            };
            curve.map_or(Key::Other, |c| Key::Ec(c, bits))
        }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => Key::Rsa(bits),
        _ => Key::Other,
    }
}

/// Checks a certificate's signature (its TBS part) with its issuer's key.
fn issued_by(cert: &X509Certificate<'_>, issuer_key: &Key) -> bool {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let tbs = cert.tbs_certificate.as_ref();
    let sig = &cert.signature_value.data;
    let algs: &[&'static dyn VerificationAlgorithm] = match (oid.as_str(), issuer_key) {
        ("1.2.840.10045.4.3.2", Key::Ec(Curve::P256, _)) => &[&signature::ECDSA_P256_SHA256_ASN1],
        ("1.2.840.10045.4.3.3", Key::Ec(Curve::P256, _)) => &[&signature::ECDSA_P256_SHA384_ASN1],
        ("1.2.840.10045.4.3.2", Key::Ec(Curve::P384, _)) => &[&signature::ECDSA_P384_SHA256_ASN1],
        ("1.2.840.10045.4.3.3", Key::Ec(Curve::P384, _)) => &[&signature::ECDSA_P384_SHA384_ASN1],
        ("1.2.840.113549.1.1.11", Key::Rsa(_)) => &[&signature::RSA_PKCS1_2048_8192_SHA256],
        ("1.2.840.113549.1.1.12", Key::Rsa(_)) => &[&signature::RSA_PKCS1_2048_8192_SHA384],
        ("1.2.840.113549.1.1.13", Key::Rsa(_)) => &[&signature::RSA_PKCS1_2048_8192_SHA512],
        // RSASSA-PSS: the hash is in the parameters; a wrong guess simply fails to verify.
        ("1.2.840.113549.1.1.10", Key::Rsa(_)) => &[
            &signature::RSA_PSS_2048_8192_SHA256,
            &signature::RSA_PSS_2048_8192_SHA384,
            &signature::RSA_PSS_2048_8192_SHA512,
        ],
        _ => return false,
    };
    let point = match issuer_key {
        Key::Ec(_, p) | Key::Rsa(p) => p,
        Key::Other => return false,
    };
    algs.iter().any(|alg| UnparsedPublicKey::new(*alg, point).verify(tbs, sig).is_ok())
}

/// A pinned country signing CA.
#[derive(Debug)]
struct Csca {
    subject_raw: Vec<u8>,
    subject: String,
    key: Key,
    validity: (i64, i64),
}

/// A seal signer certificate, parsed and checked against the CSCAs once.
#[derive(Debug)]
struct SealSigner {
    key: Key,
    subject: String,
    validity: (i64, i64),
    /// The subject's countryName (alpha-2).
    country: Option<String>,
    /// The issuing CSCA: its subject and validity; `None` when no pinned CSCA issued it.
    csca: Option<(String, (i64, i64))>,
    /// SHA-256(DER)[0..8], base64, as a DCC kid is written.
    kid: String,
}

/// The country signing CAs seals are checked against, and the signers already checked.
#[derive(Debug, Default)]
pub(crate) struct SealTrust {
    cscas: Vec<Csca>,
    /// Keyed by `sig.cer` as the seal writes it: a seal of a signer already seen is neither
    /// decoded nor hashed as DER again (base64 of ~600 characters, 7 k instructions a seal).
    signers: RwLock<HashMap<String, Arc<SealSigner>>>,
}

impl SealTrust {
    /// The CSCAs among pinned certificates (`--trust-cert`): any certificate that parses.
    pub(crate) fn new<'a>(pinned: impl Iterator<Item = &'a [u8]>) -> SealTrust {
        let cscas = pinned
            .filter_map(|der| {
                let (_, x) = X509Certificate::from_der(der).ok()?;
                Some(Csca {
                    subject_raw: x.subject().as_raw().to_vec(),
                    subject: x.subject().to_string(),
                    key: key_of(x.public_key()),
                    validity: (x.validity().not_before.timestamp(), x.validity().not_after.timestamp()),
                })
            })
            .collect();
        SealTrust { cscas, signers: RwLock::new(HashMap::new()) }
    }

    /// The signer already checked for a `sig.cer` text.
    fn cached(&self, cer: &str) -> Option<Arc<SealSigner>> {
        self.signers.read().ok().and_then(|c| c.get(cer).cloned())
    }

    /// [`SealTrust::signer`] of `der`, remembered under its `sig.cer` text.
    fn check_and_remember(&self, cer: &str, der: &[u8]) -> Option<Arc<SealSigner>> {
        let signer = self.signer(der)?;
        if let Ok(mut cache) = self.signers.write() {
            if cache.len() >= MAX_CACHED_SIGNERS {
                cache.clear();
            }
            cache.insert(cer.to_owned(), Arc::clone(&signer));
        }
        Some(signer)
    }

    /// Parses a signer certificate and checks it against the CSCAs.
    fn signer(&self, der: &[u8]) -> Option<Arc<SealSigner>> {
        let (rest, x) = X509Certificate::from_der(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        // The CSCAs named as issuer: by the name's bytes, or its text when a CSCA encodes the
        // same name with other string types. Never every CSCA: a made-up certificate must
        // not cost one signature check per pinned CSCA.
        let issuer_raw = x.issuer().as_raw();
        let issuer_text = x.issuer().to_string();
        let csca = self
            .cscas
            .iter()
            .filter(|c| c.subject_raw == issuer_raw || c.subject == issuer_text)
            .find(|c| issued_by(&x, &c.key))
            .map(|c| (c.subject.clone(), c.validity));
        Some(Arc::new(SealSigner {
            key: key_of(x.public_key()),
            subject: x.subject().to_string(),
            validity: (x.validity().not_before.timestamp(), x.validity().not_after.timestamp()),
            country: x.subject().iter_country().next().and_then(|a| a.as_str().ok()).map(str::to_ascii_uppercase),
            csca,
            kid: base64::engine::general_purpose::STANDARD
                .encode(&ring::digest::digest(&ring::digest::SHA256, der).as_ref()[..8]),
        }))
    }
}

/// base64url as the seals write it, with or without padding; the standard alphabet too.
fn b64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if !s.contains(['+', '/']) {
        return base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok();
    }
    let cleaned: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cleaned).ok()
}

/// Verifies a seal's JSON text at `at`.
pub(crate) fn verify(text: &str, trust: &SealTrust, at: OffsetDateTime) -> Verdict {
    let mut read = Read::default();
    let mut payload = None;
    let outcome = check(text, trust, at.unix_timestamp(), &mut read, &mut payload);
    read.into_verdict(Format::VdsNc, outcome, payload)
}

fn check(
    text: &str,
    trust: &SealTrust,
    at: i64,
    read: &mut Read,
    payload_out: &mut Option<Value>,
) -> Result<(), Failure> {
    if text.len() > MAX_SEAL_LEN {
        return Err(invalid("the seal is longer than any QR code holds"));
    }
    let seal = json::parse_strict_str(text).map_err(|_| invalid("the seal is not one JSON object"))?;
    // Some readers export the seal as a one-element array (KDE's Japanese sample).
    let seal = match seal {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    };
    let Value::Object(mut seal) = seal else { return Err(invalid("the seal is not a JSON object")) };
    let sig = seal.remove("sig").filter(Value::is_object).ok_or_else(|| invalid("the seal has no sig object"))?;
    let data = seal.remove("data").filter(Value::is_object).ok_or_else(|| invalid("the seal has no data object"))?;
    normalise(&data, read);
    // For display whatever the verdict; trusted only after the signature below.
    let data = &*payload_out.insert(data);

    let field = |k: &str| sig.get(k).and_then(Value::as_str);
    let curve = match field("alg") {
        Some("ES256") => Curve::P256,
        Some("ES384") => Curve::P384,
        Some(other) => {
            return Err((
                ReasonCode::UnsupportedAlgorithm,
                format!("seal algorithm {other:.20} is not ES256 or ES384"),
            ));
        }
        None => return Err(invalid("sig has no alg")),
    };
    let cer_invalid = || invalid("sig.cer is not a base64url certificate");
    let cer_text = field("cer").ok_or_else(cer_invalid)?;
    let cached = trust.cached(cer_text);
    // Decoded only when not seen before; the errors come in the same order either way.
    let cer = match cached {
        Some(_) => Vec::new(),
        None => b64(cer_text).ok_or_else(cer_invalid)?,
    };
    let sigvl = field("sigvl").and_then(b64).ok_or_else(|| invalid("sig.sigvl is not base64url"))?;
    let signer = match cached {
        Some(signer) => signer,
        None => {
            trust.check_and_remember(cer_text, &cer).ok_or_else(|| invalid("sig.cer is not an X.509 certificate"))?
        }
    };
    let Key::Ec(key_curve, point) = &signer.key else {
        return Err((ReasonCode::UnsupportedAlgorithm, "the signer certificate's key is not P-256 or P-384".into()));
    };
    if *key_curve != curve {
        return Err((ReasonCode::UnsupportedAlgorithm, "sig.alg does not fit the signer certificate's curve".into()));
    }
    let mut canonical = Vec::with_capacity(text.len());
    json::canonical(data, &mut canonical).map_err(|_| invalid("data cannot be canonicalised"))?;
    // Raw r‖s as the seal specification writes it; DER as some issuers produced it.
    let alg: &'static dyn VerificationAlgorithm = match (curve, sigvl.len()) {
        (Curve::P256, 64) => &signature::ECDSA_P256_SHA256_FIXED,
        (Curve::P384, 96) => &signature::ECDSA_P384_SHA384_FIXED,
        (Curve::P256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P384, _) => &signature::ECDSA_P384_SHA384_ASN1,
    };
    if UnparsedPublicKey::new(alg, point).verify(&canonical, &sigvl).is_err() {
        return Err((ReasonCode::SignatureInvalid, "the seal's signature does not verify".into()));
    }
    let mut chain = vec![signer.subject.clone()];
    if let Some((csca, _)) = &signer.csca {
        chain.push(csca.clone());
    }
    read.signer =
        Some(SignerInfo { kid: signer.kid.clone(), subject: signer.subject.clone(), facility_code: None, chain });

    let issuing = check_schema(data)?;
    let (not_before, not_after) = signer.validity;
    if at < not_before {
        return Err((ReasonCode::SignerNotYetValid, "the seal's signer certificate is not valid yet".into()));
    }
    if at > not_after {
        return Err((ReasonCode::SignerExpired, "the seal's signer certificate has expired".into()));
    }
    let Some((_, (csca_from, csca_until))) = &signer.csca else {
        return Err((
            ReasonCode::ChainInvalid,
            "the seal's signer is not certified by a trusted country signing CA".into(),
        ));
    };
    if at < *csca_from || at > *csca_until {
        return Err((ReasonCode::ChainInvalid, "the country signing CA is not valid at this time".into()));
    }
    if normalised::alpha2_of(issuing) != signer.country.as_deref() || signer.country.is_none() {
        return Err((ReasonCode::ChainInvalid, "the seal's issuing country is not its signer certificate's".into()));
    }
    Ok(())
}

/// The seal's header and message shape (VDS-NC 1: `hdr {t, v, is}`; a vaccination seal's
/// `msg {uvci, pid {n}, ve [{des, nam, dis, vd [{dvc, seq, ctr, adm}]}]}`). Returns `is`.
fn check_schema(data: &Value) -> Result<&str, Failure> {
    let schema = |d: &str| (ReasonCode::SchemaValidationFailed, d.to_owned());
    let hdr = data.get("hdr").filter(|h| h.is_object()).ok_or_else(|| schema("data.hdr is missing"))?;
    let kind = hdr.get("t").and_then(Value::as_str).ok_or_else(|| schema("hdr.t is missing"))?;
    if hdr.get("v").and_then(Value::as_u64) != Some(1) {
        return Err(schema("hdr.v is not 1"));
    }
    let issuing = hdr.get("is").and_then(Value::as_str).ok_or_else(|| schema("hdr.is is missing"))?;
    let msg = data.get("msg").filter(|m| m.is_object()).ok_or_else(|| schema("data.msg is missing"))?;
    if !msg.get("pid").and_then(|p| p.get("n")).is_some_and(Value::is_string) {
        return Err(schema("msg.pid.n is missing"));
    }
    match kind {
        "icao.vacc" => {
            let events = msg.get("ve").and_then(Value::as_array).filter(|v| !v.is_empty());
            let events = events.ok_or_else(|| schema("msg.ve is not a non-empty array"))?;
            for e in events {
                let doses = e.get("vd").and_then(Value::as_array).filter(|v| !v.is_empty());
                let doses = doses.ok_or_else(|| schema("a ve entry has no vd"))?;
                if !doses.iter().all(|d| d.get("dvc").is_some_and(Value::is_string)) {
                    return Err(schema("a vaccination has no date (dvc)"));
                }
            }
        }
        "icao.test" => {}
        _ => return Err(schema("hdr.t is neither icao.vacc nor icao.test")),
    }
    Ok(issuing)
}

/// `pid.n`, `pid.dob` and every `ve[].vd[]` event, oldest first.
fn normalise(data: &Value, read: &mut Read) {
    let Some(msg) = data.get("msg") else { return };
    if let Some(name) = msg.get("pid").and_then(|p| p.get("n")).and_then(Value::as_str) {
        read.holder = Some(Holder {
            name: name.split_whitespace().collect::<Vec<_>>().join(" "),
            dob: msg.get("pid").and_then(|p| p.get("dob")).and_then(Value::as_str).map(str::to_owned),
        });
    }
    for e in msg.get("ve").and_then(Value::as_array).into_iter().flatten() {
        let nam = e.get("nam").and_then(Value::as_str).unwrap_or_default();
        let product = normalised::mp_of_name(nam).map_or_else(|| nam.to_owned(), str::to_owned);
        for d in e.get("vd").and_then(Value::as_array).into_iter().flatten() {
            let Some(date) = d.get("dvc").and_then(Value::as_str).and_then(normalised::date_part) else { continue };
            read.vaccinations.push(Vaccination {
                date,
                product: product.clone(),
                // ICAO's own sample writes `"seq": "1"`.
                dose: d
                    .get("seq")
                    .and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|t| t.parse().ok())))
                    .and_then(|n| u32::try_from(n).ok()),
                series: None,
                country: d.get("ctr").and_then(Value::as_str).and_then(normalised::alpha2_of).map(str::to_owned),
            });
        }
    }
    normalised::oldest_first(&mut read.vaccinations);
    normalised::fill_numbers(&mut read.vaccinations);
}

#[cfg(test)]
mod tests;
