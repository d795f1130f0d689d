//! The passport format: `HC1:` text ⇄ Base45 ⇄ zlib ⇄ COSE_Sign1 ⇄ CWT ⇄ DCC (SPEC §3).
//!
//! This module signs a person's verified dose history with a signer closure it is handed and
//! checks a COSE signature against a public key it is handed. It knows nothing of
//! certificates, files, databases or the clock: `iat`/`exp` come in as numbers.

mod cbor;
mod cbor_json;
mod cose;
mod cwt;
mod dcc;
mod deflate;
mod hc1;
pub(crate) mod translit;
pub(crate) mod uvci;
pub mod vaccines;

pub use cose::{Algorithm, CoseSign1};
pub use cwt::{CertificateKind, Claims, check_schema};
pub use dcc::{DCC_VERSION, Dose, ISSUER_COUNTRY, NumberedDose, PassportContent, Person, number_doses};
pub use hc1::{HC1_PREFIX, MAX_HC1_LEN, MAX_HC1_LEN_Q, MAX_INFLATED_LEN};
pub use uvci::{Uvci, UvciError};
pub use vaccines::Vaccine;

use ring::signature;

/// Why a text is not a well-formed passport. Each variant maps to one SPEC §6 reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text does not start with `HC1:` (hcert spec §4.1) → `INVALID_PREFIX`.
    #[error("the text does not start with HC1:")]
    InvalidPrefix,
    /// Longer than any QR code holds ([`MAX_HC1_LEN`]) → `BASE45_DECODING_FAILED`.
    #[error(
        "the text is {len} characters long, more than any QR code holds ({MAX_HC1_LEN}; a passport \
         printed at error correction level Q holds at most {MAX_HC1_LEN_Q}): it was not read from a \
         QR code and is not decoded"
    )]
    TooLong {
        /// The length received.
        len: usize,
    },
    /// Not Base45 (RFC 9285) → `BASE45_DECODING_FAILED`.
    #[error("the text after HC1: is not valid Base45")]
    Base45,
    /// Not a complete zlib stream, or it inflates past [`MAX_INFLATED_LEN`] →
    /// `DECOMPRESSION_FAILED`.
    #[error("zlib decompression failed or exceeded {MAX_INFLATED_LEN} bytes")]
    Decompression,
    /// Not a COSE_Sign1 structure (RFC 9052 §4.2) → `COSE_DECODING_FAILED`.
    #[error("not a COSE_Sign1 message")]
    Cose,
    /// The payload is not a CWT with an `hcert` claim (RFC 8392) → `CWT_DECODING_FAILED`.
    #[error("the CWT cannot be decoded: {0}")]
    Cwt(&'static str),
    /// The DCC does not have the schema's shape → `SCHEMA_VALIDATION_FAILED`.
    #[error("the DCC does not follow the schema: {0}")]
    Schema(&'static str),
}

/// A signer's public key, as taken from its certificate.
#[derive(Debug, Clone, Copy)]
pub enum PublicKey<'a> {
    /// An uncompressed P-256 point (`04 ‖ x ‖ y`).
    EcP256(&'a [u8]),
    /// An RSA public key, PKCS#1 `RSAPublicKey` DER.
    Rsa(&'a [u8]),
}

/// Decodes the transport layers and the COSE structure of a passport text. The claims inside
/// are not decoded yet: see [`CoseSign1::claims`].
pub fn decode(text: &str) -> Result<CoseSign1, DecodeError> {
    let cose = hc1::decode(text)?;
    cose::parse(&cose)
}

impl CoseSign1 {
    /// Checks the signature with `key`. An algorithm that does not fit the key type fails.
    pub fn verify_signature(&self, key: PublicKey<'_>) -> bool {
        let tbs = cose::sig_structure(&self.protected_raw, &self.payload);
        let result = match (self.alg, key) {
            (Ok(Algorithm::Es256), PublicKey::EcP256(point)) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(&tbs, &self.signature)
            }
            (Ok(Algorithm::Ps256), PublicKey::Rsa(der)) => {
                signature::UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, der)
                    .verify(&tbs, &self.signature)
            }
            _ => return false,
        };
        result.is_ok()
    }

    /// Decodes the CWT claims. Call it for display before the signature is checked if you
    /// must, but trust nothing in it until [`verify_signature`](Self::verify_signature) passed.
    pub fn claims(&self) -> Result<Claims, DecodeError> {
        cwt::parse_claims(&self.payload)
    }
}

/// Signs a passport: CWT claims, protected header `{1: alg, 4: kid}`, the signature from
/// `sign` over the Sig_structure, then COSE → zlib → Base45 → `HC1:`.
///
/// `sign` receives the bytes to sign and returns the raw signature (for ES256 the 64-byte
/// r‖s form). Taking a closure keeps keys out of this module and lets an HSM sign later.
/// Returns `Ok(None)` when the content has no dose.
pub fn sign<E>(
    content: &PassportContent,
    alg: Algorithm,
    kid: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Option<String>, E> {
    let Some(payload) = dcc::encode_claims(content) else {
        return Ok(None);
    };
    let protected = cose::protected_header(alg, kid);
    let signature = sign(&cose::sig_structure(&protected, &payload))?;
    let message = cose::assemble(&protected, &payload, &signature);
    Ok(Some(hc1::encode(&message)))
}

/// Parses a COSE_Sign1 message from its CBOR bytes, the layer under `HC1:`, Base45 and zlib.
/// [`decode`] is the usual entry; this one lets fuzzing and the corpus replay reach the COSE
/// parser without building a valid transport around each input.
pub fn parse_cose(bytes: &[u8]) -> Result<CoseSign1, DecodeError> {
    cose::parse(bytes)
}

/// Decodes CWT claims from a COSE payload, as [`CoseSign1::claims`] does, for fuzzing and the
/// corpus replay.
pub fn parse_claims(payload: &[u8]) -> Result<Claims, DecodeError> {
    cwt::parse_claims(payload)
}

/// Reads one CBOR data item into JSON with the bounded reader that decodes a passport's
/// claims (tags dropped, byte strings as base64, integer map keys as decimal text); trailing
/// bytes are refused. For fuzzing and the corpus replay.
pub fn cbor_to_json(bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
    let mut r = cbor_json::Reader::new(bytes);
    let json = r.json(0).map_err(|e| match e {
        cbor_json::Malformed::Syntax => DecodeError::Cwt("not well-formed CBOR"),
        cbor_json::Malformed::DuplicateKey => DecodeError::Cwt("a map repeats a key"),
    })?;
    if r.at_end() { Ok(json) } else { Err(DecodeError::Cwt("trailing bytes after the item")) }
}

/// How far the real length of a passport text may be from [`estimated_hc1_len`]: measured
/// within 6 characters over 400 ES256 signatures of the same content (655–660 characters
/// with 3 doses, 1,654–1,659 with 40), the estimate in the middle; 16 leaves room to spare.
pub const HC1_LEN_ESTIMATE_MARGIN: usize = 16;

/// The length the `HC1:` text of [`sign`] would have, without signing: the same bytes with
/// a stand-in for the signature. An ES256 signature is 64 random bytes zlib cannot shorten,
/// so the real text differs by a few characters ([`HC1_LEN_ESTIMATE_MARGIN`]). A message
/// short enough to fit even uncompressed is not compressed here: that bound is returned.
/// `None` when the content has no dose.
pub fn estimated_hc1_len(content: &PassportContent, alg: Algorithm, kid: &[u8]) -> Option<usize> {
    let signature_len = match alg {
        Algorithm::Es256 => 64,
        // RSA-2048, the size Viet Nam's production DSC and foreign PS256 issuers use.
        Algorithm::Ps256 => 256,
    };
    estimated_hc1_len_with(content, alg, signature_len, kid)
}

/// [`estimated_hc1_len`] for a signature of `signature_len` bytes: a PS256 signature is as
/// long as the key's modulus (384 bytes for RSA-3072).
pub fn estimated_hc1_len_with(
    content: &PassportContent,
    alg: Algorithm,
    signature_len: usize,
    kid: &[u8],
) -> Option<usize> {
    let payload = dcc::encode_claims(content)?;
    let protected = cose::protected_header(alg, kid);
    // Tag, array and the byte-string heads: at most 16 bytes.
    let cose_len = protected.len() + payload.len() + signature_len + 16;
    // zlib never makes data longer than its stored blocks: a 2-byte header, 5 bytes per
    // 65,535-byte block and a 4-byte checksum (RFC 1950, RFC 1951 §3.2.4).
    let stored = cose_len + 6 + 5 * (cose_len / 65_535 + 1);
    let uncompressed_bound = HC1_PREFIX.len() + stored.div_ceil(2) * 3;
    if uncompressed_bound + HC1_LEN_ESTIMATE_MARGIN <= MAX_HC1_LEN_Q {
        return Some(uncompressed_bound);
    }
    // Random-looking bytes, like a signature (a fixed pattern would compress).
    let stand_in: Vec<u8> =
        (0..signature_len).map(|i| ((i as u32).wrapping_add(1).wrapping_mul(0x9E37_79B9) >> 24) as u8).collect();
    Some(hc1::encode(&cose::assemble(&protected, &payload, &stand_in)).len())
}

/// Signs already encoded CWT claims under an already encoded protected header and
/// unprotected header map, as [`sign`] does, so that tests can sign hostile content with a
/// valid signature and see that the content itself is refused.
#[cfg(test)]
pub(crate) fn sign_raw(
    protected: &[u8],
    unprotected: &[u8],
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let signature = sign(&cose::sig_structure(protected, payload));
    let mut w = cbor::CborWriter::default();
    w.tag(18).array(4).bytes(protected).raw(unprotected).bytes(payload).bytes(&signature);
    hc1::encode(&w.into_bytes())
}

/// The protected header `{1: alg, 4: kid}` as [`sign`] writes it, for tests.
#[cfg(test)]
pub(crate) fn protected_header(alg: Algorithm, kid: &[u8]) -> Vec<u8> {
    cose::protected_header(alg, kid)
}

#[cfg(test)]
mod tests;
