//! Parsing X.509 certificates into what vaxpass needs of them: kid, subject, facility code,
//! validity, CA flag, EKUs and the public key.
//!
//! Real foreign DSCs are not always strict DER (the EU test data has one that strict parsers
//! refuse). A pinned signer certificate is still usable if its public key can be found:
//! [`Certificate::from_der`] falls back to a tolerant TLV walk that extracts only the
//! SubjectPublicKeyInfo, and such a certificate carries no validity or EKU to check.

use ring::digest;
use x509_parser::prelude::*;

use crate::passport::PublicKey;

/// A key identifier: the first 8 bytes of SHA-256 over the DSC's DER (hcert spec §3.3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 8]);

impl Kid {
    /// The kid of a certificate.
    pub fn of(cert_der: &[u8]) -> Kid {
        let d = digest::digest(&digest::SHA256, cert_der);
        let mut k = [0u8; 8];
        k.copy_from_slice(&d.as_ref()[..8]);
        Kid(k)
    }

    /// Reads a kid from the bytes of a COSE header (any other length is no kid of ours).
    pub fn from_slice(b: &[u8]) -> Option<Kid> {
        Some(Kid(b.try_into().ok()?))
    }

    /// Base64 (standard alphabet), the form EU trust lists and our JSON use.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses the base64 form.
    pub fn from_base64(s: &str) -> Option<Kid> {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
        Kid::from_slice(&b)
    }
}

impl std::fmt::Debug for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kid({})", self.to_base64())
    }
}

/// A signer's public key, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerKey {
    /// Uncompressed P-256 point.
    EcP256(Vec<u8>),
    /// PKCS#1 RSAPublicKey DER.
    Rsa(Vec<u8>),
    /// A key type passports cannot be signed with (e.g. another curve).
    Unsupported,
}

impl SignerKey {
    /// The borrowed form the passport module verifies with.
    pub fn as_public_key(&self) -> Option<PublicKey<'_>> {
        match self {
            SignerKey::EcP256(p) => Some(PublicKey::EcP256(p)),
            SignerKey::Rsa(k) => Some(PublicKey::Rsa(k)),
            SignerKey::Unsupported => None,
        }
    }
}

/// What vaxpass knows of a certificate after parsing it.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// SHA-256(DER)[0..8].
    pub kid: Kid,
    /// The subject as an RFC 4514 string, or empty if it could not be parsed.
    pub subject: String,
    /// The facility code (`serialNumber` attribute, PPNNN) of a vaxpass facility DSC.
    pub facility_code: Option<String>,
    /// The province code (PP) of a provincial CA, from the `… - Provincial CA PP` common name
    /// that `vaxpass pki issue-ca` writes; `None` for any other certificate.
    pub province: Option<String>,
    /// Validity in Unix seconds; `None` for a certificate read by the tolerant fallback.
    pub validity: Option<(i64, i64)>,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// pathLenConstraint of a CA.
    pub path_len: Option<u32>,
    /// Subject equals issuer (a root candidate).
    pub self_issued: bool,
    /// Extended key usages as dotted OIDs; `None` when the extension is absent.
    pub ekus: Option<Vec<String>>,
    /// The public key.
    pub key: SignerKey,
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Neither strict parsing nor the tolerant fallback found a certificate.
    #[error("not an X.509 certificate ({0})")]
    Malformed(String),
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_SERIAL_NUMBER: &str = "2.5.4.5";

impl Certificate {
    /// Parses a DER certificate, strictly if possible, tolerantly otherwise.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        match X509Certificate::from_der(der) {
            Ok((_, x)) => Ok(Self::from_parsed(der, &x)),
            Err(e) => Self::from_der_tolerant(der).ok_or_else(|| CertError::Malformed(e.to_string())),
        }
    }

    /// Parses strictly; used for our own hierarchy, where tolerance would hide mistakes.
    pub fn from_der_strict(der: &[u8]) -> Result<Certificate, CertError> {
        let (_, x) = X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        Ok(Self::from_parsed(der, &x))
    }

    fn from_parsed(der: &[u8], x: &X509Certificate<'_>) -> Certificate {
        let facility_code = x
            .subject()
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == OID_SERIAL_NUMBER)
            .find_map(|a| a.as_str().ok())
            .filter(|s| crate::provinces::is_facility_code(s))
            .map(str::to_owned);
        let province = x
            .subject()
            .iter_common_name()
            .find_map(|a| a.as_str().ok())
            .and_then(province_of_ca_name)
            .map(str::to_owned);
        let bc = x.basic_constraints().ok().flatten().map(|e| (e.value.ca, e.value.path_len_constraint));
        let ekus = x.extended_key_usage().ok().flatten().map(|e| {
            let v = e.value;
            let mut list: Vec<String> = v.other.iter().map(|o| o.to_id_string()).collect();
            // x509-parser reports the purposes it knows as flags, not in `other`; without
            // them a TLS server certificate looked like one with no EKU at all.
            let known = [
                (v.any, "2.5.29.37.0"),
                (v.server_auth, "1.3.6.1.5.5.7.3.1"),
                (v.client_auth, "1.3.6.1.5.5.7.3.2"),
                (v.code_signing, "1.3.6.1.5.5.7.3.3"),
                (v.email_protection, "1.3.6.1.5.5.7.3.4"),
                (v.time_stamping, "1.3.6.1.5.5.7.3.8"),
                (v.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
            ];
            list.extend(known.iter().filter(|(set, _)| *set).map(|(_, oid)| (*oid).to_owned()));
            list
        });
        Certificate {
            der: der.to_vec(),
            kid: Kid::of(der),
            subject: x.subject().to_string(),
            facility_code,
            province: province.filter(|_| bc.is_some_and(|b| b.0)),
            validity: Some((x.validity().not_before.timestamp(), x.validity().not_after.timestamp())),
            is_ca: bc.is_some_and(|b| b.0),
            path_len: bc.and_then(|b| b.1),
            self_issued: x.subject().as_raw() == x.issuer().as_raw(),
            ekus,
            key: signer_key(
                &x.public_key().algorithm.algorithm.to_id_string(),
                x.public_key()
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .as_deref(),
                &x.public_key().subject_public_key.data,
            ),
        }
    }

    fn from_der_tolerant(der: &[u8]) -> Option<Certificate> {
        let (alg, param, key) = tolerant::spki(der)?;
        Some(Certificate {
            der: der.to_vec(),
            kid: Kid::of(der),
            subject: String::new(),
            facility_code: None,
            province: None,
            validity: None,
            is_ca: false,
            path_len: None,
            self_issued: false,
            ekus: None,
            key: signer_key(&alg, param.as_deref(), &key),
        })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM encoding with LF line endings (as rcgen writes), so that concatenated PEM files
    /// such as `chain.pem` are uniform.
    pub fn to_pem(&self) -> String {
        let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
        ::pem::encode_config(&::pem::Pem::new("CERTIFICATE", self.der.clone()), config)
    }
}

/// The province code at the end of a provincial CA's common name (`… - Provincial CA 01`).
fn province_of_ca_name(cn: &str) -> Option<&str> {
    let code = cn.rsplit_once(" - Provincial CA ")?.1;
    crate::provinces::province_name(code).map(|_| code)
}

fn signer_key(alg: &str, param: Option<&str>, bits: &[u8]) -> SignerKey {
    match (alg, param) {
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => SignerKey::EcP256(bits.to_vec()),
        (OID_RSA | OID_RSASSA_PSS, _) => SignerKey::Rsa(bits.to_vec()),
        _ => SignerKey::Unsupported,
    }
}

/// Reads certificates from a file's bytes: PEM (any number of `CERTIFICATE` blocks; other
/// blocks such as keys are skipped) or a single DER certificate.
pub fn parse_certificates(bytes: &[u8], strict: bool) -> Result<Vec<Certificate>, CertError> {
    let parse = |der: &[u8]| {
        if strict { Certificate::from_der_strict(der) } else { Certificate::from_der(der) }
    };
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let blocks = ::pem::parse_many(bytes).map_err(|e| CertError::Malformed(format!("bad PEM: {e}")))?;
        blocks.iter().filter(|p| p.tag() == "CERTIFICATE").map(|p| parse(p.contents())).collect()
    } else {
        Ok(vec![parse(bytes)?])
    }
}

/// A tolerant BER/DER walk to the SubjectPublicKeyInfo: lengths may be non-minimal, and
/// nothing but the tag structure is checked.
mod tolerant {
    /// (tag, content, rest)
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (len_bytes, rest) = rest.split_at(n);
            (len_bytes.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)), rest)
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        Some((tag, content, rest))
    }

    fn oid_string(b: &[u8]) -> Option<String> {
        let (&first, rest) = b.split_first()?;
        let mut arcs = vec![u64::from(first / 40), u64::from(first % 40)];
        let mut acc = 0u64;
        for &x in rest {
            acc = acc.checked_mul(128)? | u64::from(x & 0x7f);
            if x & 0x80 == 0 {
                arcs.push(acc);
                acc = 0;
            }
        }
        Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
    }

    /// (algorithm OID, curve OID, key bits)
    pub(super) fn spki(der: &[u8]) -> Option<(String, Option<String>, Vec<u8>)> {
        let (0x30, cert, _) = tlv(der)? else { return None };
        let (0x30, mut tbs, _) = tlv(cert)? else { return None };
        // [0] version (optional), serial, signature, issuer, validity, subject, spki
        let (tag, _, rest) = tlv(tbs)?;
        if tag == 0xa0 {
            tbs = rest;
        }
        for _ in 0..5 {
            tbs = tlv(tbs)?.2;
        }
        let (0x30, spki, _) = tlv(tbs)? else { return None };
        let (0x30, alg, rest) = tlv(spki)? else { return None };
        let (0x03, bits, _) = tlv(rest)? else { return None };
        let (0x06, alg_oid, alg_rest) = tlv(alg)? else { return None };
        let param = match tlv(alg_rest) {
            Some((0x06, p, _)) => oid_string(p),
            _ => None,
        };
        let (_unused, key) = bits.split_first()?;
        Some((oid_string(alg_oid)?, param, key.to_vec()))
    }
}
