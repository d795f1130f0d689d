//! COSE_Sign1 (RFC 9052 §4.2) as the EU DCC uses it: parse tolerantly, build minimally.
//!
//! Parsing accepts the message with or without tag 18 (some issuers omit it), wrapped in the
//! CWT tag 61 (seen in the EU test data), and takes `alg`/`kid` from the protected header
//! first, then the unprotected one (hcert spec §3.3.1: the protected header wins).

use ciborium::Value;

use super::DecodeError;
use super::cbor::CborWriter;

/// CBOR tag of COSE_Sign1 (RFC 9052 §2).
const TAG_COSE_SIGN1: u64 = 18;
/// CBOR tag of a CWT (RFC 8392 §6); some issuers wrap COSE_Sign1 in it.
const TAG_CWT: u64 = 61;
/// Self-described CBOR (RFC 8949 §3.4.6), harmless to skip.
const TAG_SELF_DESCRIBED: u64 = 55799;

/// COSE header label of the algorithm.
const HEADER_ALG: i128 = 1;
/// COSE header label of the key identifier.
const HEADER_KID: i128 = 4;

/// CBOR nesting we accept. A DCC is at most 5 levels deep; 32 leaves room for foreign
/// extensions while keeping recursion (and the stack) bounded on hostile input.
pub(crate) const MAX_CBOR_DEPTH: usize = 32;

/// Signature algorithms a passport may use (hcert spec §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, COSE -7; the signature is the 64-byte r‖s form.
    Es256,
    /// RSASSA-PSS with SHA-256, COSE -37; used by some foreign issuers.
    Ps256,
}

impl Algorithm {
    /// The COSE algorithm identifier.
    pub fn cose_id(self) -> i64 {
        match self {
            Algorithm::Es256 => -7,
            Algorithm::Ps256 => -37,
        }
    }

    fn from_cose_id(id: i128) -> Option<Self> {
        match id {
            -7 => Some(Algorithm::Es256),
            -37 => Some(Algorithm::Ps256),
            _ => None,
        }
    }
}

/// A parsed COSE_Sign1 message, not yet verified.
#[derive(Debug, Clone)]
pub struct CoseSign1 {
    /// The protected header exactly as received: the signature covers these bytes.
    pub(crate) protected_raw: Vec<u8>,
    /// The algorithm, or `None` when absent or not one we support (`Err` keeps the raw id).
    pub alg: Result<Algorithm, Option<i128>>,
    /// The key identifier, protected header first.
    pub kid: Option<Vec<u8>>,
    /// The CWT claims, still encoded.
    pub payload: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// Parses CBOR from untrusted bytes with a bounded nesting depth, refusing trailing bytes.
pub(crate) fn parse_cbor(bytes: &[u8]) -> Result<Value, ()> {
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_CBOR_DEPTH).map_err(|_| ())?;
    if reader.is_empty() { Ok(value) } else { Err(()) }
}

/// Parses a COSE_Sign1 message.
pub(crate) fn parse(bytes: &[u8]) -> Result<CoseSign1, DecodeError> {
    let mut value = parse_cbor(bytes).map_err(|_| DecodeError::Cose)?;
    // Unwrap at most three known tags; any other tag is not a COSE_Sign1.
    for _ in 0..3 {
        match value {
            Value::Tag(TAG_COSE_SIGN1 | TAG_CWT | TAG_SELF_DESCRIBED, inner) => value = *inner,
            Value::Tag(..) => return Err(DecodeError::Cose),
            _ => break,
        }
    }
    let Value::Array(items) = value else {
        return Err(DecodeError::Cose);
    };
    let [protected, unprotected, payload, signature]: [Value; 4] = items.try_into().map_err(|_| DecodeError::Cose)?;
    let Value::Bytes(protected_raw) = protected else {
        return Err(DecodeError::Cose);
    };
    let protected_map = if protected_raw.is_empty() {
        Vec::new()
    } else {
        match parse_cbor(&protected_raw) {
            Ok(Value::Map(m)) => m,
            _ => return Err(DecodeError::Cose),
        }
    };
    let Value::Map(unprotected_map) = unprotected else {
        return Err(DecodeError::Cose);
    };
    let (Value::Bytes(payload), Value::Bytes(signature)) = (payload, signature) else {
        return Err(DecodeError::Cose);
    };
    check_unique_labels(&protected_map)?;
    check_unique_labels(&unprotected_map)?;

    let alg_value = header(&protected_map, HEADER_ALG).or_else(|| header(&unprotected_map, HEADER_ALG));
    let alg = match alg_value {
        Some(Value::Integer(i)) => {
            let id = i128::from(*i);
            Algorithm::from_cose_id(id).ok_or(Some(id))
        }
        _ => Err(None),
    };
    let kid_value = header(&protected_map, HEADER_KID).or_else(|| header(&unprotected_map, HEADER_KID));
    let kid = match kid_value {
        Some(Value::Bytes(k)) => Some(k.clone()),
        None => None,
        Some(_) => return Err(DecodeError::Cose),
    };
    Ok(CoseSign1 { protected_raw, alg, kid, payload, signature })
}

/// Refuses a header map that repeats a label (RFC 9052 §3: "Labels in each of the maps
/// MUST be unique"); otherwise which of two `kid`s or `alg`s counts would depend on the
/// decoder (issue #8). The same label in both buckets stays accepted: the protected one wins
/// (hcert spec §3.3.1), and the EU test data has such messages.
fn check_unique_labels(map: &[(Value, Value)]) -> Result<(), DecodeError> {
    let mut seen = std::collections::HashSet::with_capacity(map.len());
    for (label, _) in map {
        let label = match label {
            Value::Integer(i) => format!("i{}", i128::from(*i)),
            Value::Text(t) => format!("t{t}"),
            other => format!("o{other:?}"),
        };
        if !seen.insert(label) {
            return Err(DecodeError::Cose);
        }
    }
    Ok(())
}

fn header(map: &[(Value, Value)], label: i128) -> Option<&Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Integer(i) if i128::from(*i) == label => Some(v),
        _ => None,
    })
}

/// The bytes that are signed: `["Signature1", protected, external_aad = h'', payload]`
/// (RFC 9052 §4.4).
pub(crate) fn sig_structure(protected_raw: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut w = CborWriter::with_capacity(protected_raw.len() + payload.len() + 24);
    w.array(4).text("Signature1").bytes(protected_raw).bytes(&[]).bytes(payload);
    w.into_bytes()
}

/// The protected header `{1: alg, 4: kid}` as we issue it.
pub(crate) fn protected_header(alg: Algorithm, kid: &[u8]) -> Vec<u8> {
    let mut w = CborWriter::with_capacity(16 + kid.len());
    w.map(2).int(HEADER_ALG as i64).int(alg.cose_id()).int(HEADER_KID as i64).bytes(kid);
    w.into_bytes()
}

/// Assembles the tagged COSE_Sign1 message from its parts.
pub(crate) fn assemble(protected_raw: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut w = CborWriter::with_capacity(protected_raw.len() + payload.len() + signature.len() + 16);
    w.tag(TAG_COSE_SIGN1).array(4).bytes(protected_raw).map(0).bytes(payload).bytes(signature);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(protected: &[u8], unprotected: &[u8]) -> Vec<u8> {
        let mut w = CborWriter::default();
        w.array(4).bytes(protected).raw(unprotected).bytes(b"payload").bytes(b"sig");
        w.into_bytes()
    }

    #[test]
    fn tagged_and_untagged_parse_alike() {
        let prot = protected_header(Algorithm::Es256, b"12345678");
        let tagged = assemble(&prot, b"p", b"s");
        let a = parse(&tagged).unwrap();
        let b = parse(&tagged[1..]).unwrap();
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.alg, Ok(Algorithm::Es256));
        assert_eq!(a.payload, b"p");
    }

    #[test]
    fn cwt_tag_around_cose_tag_is_accepted() {
        let prot = protected_header(Algorithm::Es256, b"k");
        let mut w = CborWriter::default();
        w.tag(TAG_CWT).raw(&assemble(&prot, b"p", b"s"));
        assert_eq!(parse(&w.into_bytes()).unwrap().kid.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn protected_kid_wins_over_unprotected() {
        let prot = protected_header(Algorithm::Es256, b"good");
        let mut unprot = CborWriter::default();
        unprot.map(1).int(4).bytes(b"evil");
        let m = parse(&message(&prot, &unprot.into_bytes())).unwrap();
        assert_eq!(m.kid.as_deref(), Some(&b"good"[..]));
    }

    #[test]
    fn unprotected_kid_and_alg_are_used_when_alone() {
        let mut unprot = CborWriter::default();
        unprot.map(2).int(1).int(-37).int(4).bytes(b"u");
        let m = parse(&message(&[], &unprot.into_bytes())).unwrap();
        assert_eq!(m.kid.as_deref(), Some(&b"u"[..]));
        assert_eq!(m.alg, Ok(Algorithm::Ps256));
    }

    #[test]
    fn unknown_algorithm_keeps_its_id() {
        let mut prot = CborWriter::default();
        prot.map(1).int(1).int(-8);
        let m = parse(&message(&prot.into_bytes(), &[0xa0])).unwrap();
        assert_eq!(m.alg, Err(Some(-8)));
    }

    #[test]
    fn wrong_shapes_are_cose_errors() {
        assert!(matches!(parse(&[0x80]), Err(DecodeError::Cose)));
        assert!(matches!(parse(b"\xd8\x19\x80"), Err(DecodeError::Cose)));
        assert!(matches!(parse(&[0x84, 0x40, 0xa0, 0x40]), Err(DecodeError::Cose)));
        let mut trailing = message(&[], &[0xa0]);
        trailing.push(0);
        assert!(matches!(parse(&trailing), Err(DecodeError::Cose)));
    }

    #[test]
    fn repeated_header_labels_are_refused_in_either_bucket() {
        // Protected {1: -7, 4: k1, 4: k2}: which kid counts would depend on the decoder.
        let mut prot = CborWriter::default();
        prot.map(3).int(1).int(-7).int(4).bytes(b"k1").int(4).bytes(b"k2");
        assert!(matches!(parse(&message(&prot.into_bytes(), &[0xa0])), Err(DecodeError::Cose)));
        let mut unprot = CborWriter::default();
        unprot.map(2).int(4).bytes(b"k1").int(4).bytes(b"k2");
        let prot = protected_header(Algorithm::Es256, b"k");
        assert!(matches!(parse(&message(&prot, &unprot.into_bytes())), Err(DecodeError::Cose)));
        let mut unprot = CborWriter::default();
        unprot.map(2).text("x").int(1).text("x").int(2);
        assert!(matches!(parse(&message(&prot, &unprot.into_bytes())), Err(DecodeError::Cose)));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0);
        assert!(matches!(parse(&deep), Err(DecodeError::Cose)));
    }
}
