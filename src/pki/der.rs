//! A strict DER (X.690 §10, §11) checker for the certificates and CSRs vaxpass writes
//! (SPEC §10): every encoding other languages' strict parsers refuse is an error here.
//!
//! rcgen 0.14 wrote `BasicConstraints { cA FALSE }` explicitly for end entities, a DEFAULT
//! value that DER forbids; Python `cryptography` refused every facility DSC with
//! "EncodedDefault … BasicConstraints::ca". This walker catches that class of mistake before
//! a file is written: minimal lengths and INTEGERs, BOOLEAN FALSE (every BOOLEAN in X.509 and
//! PKCS#10 is `DEFAULT FALSE`, so FALSE is never encoded), BIT STRING padding, named bit
//! lists without trailing zeros (KeyUsage), sorted SET OF, and RFC 5280 time forms. The
//! values of standard extensions (id-ce, 2.5.29.*) are walked too.

/// Deepest nesting accepted; a certificate needs about 10 levels.
const MAX_DEPTH: usize = 32;

/// The first strict-DER rule an encoding breaks, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not strict DER at byte {offset}: {rule}")]
pub struct DerError {
    /// Offset of the offending TLV from the start of the outermost structure.
    pub offset: usize,
    /// The rule broken.
    pub rule: &'static str,
}

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// id-ce (2.5.29) as encoded in an OID's content.
const ID_CE: [u8; 2] = [0x55, 0x1d];
/// id-ce-keyUsage (2.5.29.15): a named bit list.
const ID_CE_KEY_USAGE: [u8; 3] = [0x55, 0x1d, 0x0f];

/// Checks that `der` is exactly one strictly encoded DER value (a certificate, a CSR).
pub fn check_strict(der: &[u8]) -> Result<(), DerError> {
    let (tlv, rest) = read_tlv(der, 0)?;
    if !rest.is_empty() {
        return Err(DerError { offset: tlv.end, rule: "trailing bytes after the value" });
    }
    check_value(&tlv, 0)
}

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    /// Offset of the tag byte.
    offset: usize,
    /// Offset of the content.
    content_offset: usize,
    /// Offset just past the value.
    end: usize,
    /// The whole encoding (tag, length, content), for SET OF ordering.
    raw: &'a [u8],
}

fn err(offset: usize, rule: &'static str) -> DerError {
    DerError { offset, rule }
}

/// Reads one TLV at `offset` (relative to the outermost value) from `b`.
fn read_tlv(b: &[u8], offset: usize) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = b.split_first().ok_or(err(offset, "truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(err(offset, "multi-byte tag (none in X.509)"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(err(offset, "truncated length"))?;
    let mut header = 2;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err(err(offset, "indefinite length"));
        }
        if n > 4 || rest.len() < n {
            return Err(err(offset, "length too long or truncated"));
        }
        let (len_bytes, r) = rest.split_at(n);
        rest = r;
        header += n;
        if len_bytes[0] == 0 {
            return Err(err(offset, "length with a leading zero byte"));
        }
        let len = len_bytes.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        if len < 0x80 {
            return Err(err(offset, "long-form length below 128"));
        }
        len
    };
    if rest.len() < len {
        return Err(err(offset, "content shorter than its length"));
    }
    let (content, rest) = rest.split_at(len);
    let tlv = Tlv {
        tag,
        content,
        offset,
        content_offset: offset + header,
        end: offset + header + len,
        raw: &b[..header + len],
    };
    Ok((tlv, rest))
}

fn children<'a>(tlv: &Tlv<'a>) -> Result<Vec<Tlv<'a>>, DerError> {
    let mut out = Vec::new();
    let mut rest = tlv.content;
    let mut offset = tlv.content_offset;
    while !rest.is_empty() {
        let (child, r) = read_tlv(rest, offset)?;
        offset = child.end;
        rest = r;
        out.push(child);
    }
    Ok(out)
}

fn check_value(tlv: &Tlv<'_>, depth: usize) -> Result<(), DerError> {
    if depth > MAX_DEPTH {
        return Err(err(tlv.offset, "nested too deeply"));
    }
    let c = tlv.content;
    match tlv.tag {
        TAG_BOOLEAN => match c {
            [0xff] => Ok(()),
            [0x00] => Err(err(tlv.offset, "BOOLEAN FALSE encoded (a DEFAULT value in X.509)")),
            _ => Err(err(tlv.offset, "BOOLEAN not one byte 0xFF")),
        },
        TAG_INTEGER => match c {
            [] => Err(err(tlv.offset, "empty INTEGER")),
            [0x00, b, ..] if b & 0x80 == 0 => Err(err(tlv.offset, "INTEGER with a redundant leading 0x00")),
            [0xff, b, ..] if b & 0x80 != 0 => Err(err(tlv.offset, "INTEGER with a redundant leading 0xFF")),
            _ => Ok(()),
        },
        TAG_BIT_STRING => check_bit_string(tlv, false),
        TAG_OID => match c {
            [] => Err(err(tlv.offset, "empty OBJECT IDENTIFIER")),
            _ if c.last().is_some_and(|b| b & 0x80 != 0) => Err(err(tlv.offset, "truncated OID arc")),
            // An arc may not start with 0x80 (X.690 §8.19.2: fewest octets).
            _ if c.iter().enumerate().any(|(i, &b)| b == 0x80 && (i == 0 || c[i - 1] & 0x80 == 0)) => {
                Err(err(tlv.offset, "OID arc with a leading 0x80"))
            }
            _ => Ok(()),
        },
        TAG_UTC_TIME => check_time(tlv, 13),
        TAG_GENERALIZED_TIME => check_time(tlv, 15),
        TAG_SET => {
            let kids = children(tlv)?;
            // DER SET OF: elements in ascending order of their encodings (X.690 §11.6).
            if kids.windows(2).any(|w| w[0].raw > w[1].raw) {
                return Err(err(tlv.offset, "SET OF elements not sorted"));
            }
            kids.iter().try_for_each(|k| check_value(k, depth + 1))
        }
        t if t & 0x20 != 0 => {
            let kids = children(tlv)?;
            for k in &kids {
                check_value(k, depth + 1)?;
            }
            if t == TAG_SEQUENCE {
                check_extension(&kids, depth)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET
/// STRING }` of id-ce: its value is DER too, and is checked as such.
fn check_extension(kids: &[Tlv<'_>], depth: usize) -> Result<(), DerError> {
    let (Some(id), Some(value)) = (kids.first(), kids.last()) else { return Ok(()) };
    if kids.len() < 2 || id.tag != TAG_OID || value.tag != TAG_OCTET_STRING || !id.content.starts_with(&ID_CE) {
        return Ok(());
    }
    let (inner, rest) = read_tlv(value.content, value.content_offset)?;
    if !rest.is_empty() {
        return Err(err(inner.end, "trailing bytes in an extension value"));
    }
    if id.content == ID_CE_KEY_USAGE {
        if inner.tag != TAG_BIT_STRING {
            return Err(err(inner.offset, "KeyUsage is not a BIT STRING"));
        }
        return check_bit_string(&inner, true);
    }
    check_value(&inner, depth + 1)
}

/// Unused bits at most 7 and zero; a named bit list (`named`) has no trailing zero bits
/// (X.690 §11.2.2).
fn check_bit_string(tlv: &Tlv<'_>, named: bool) -> Result<(), DerError> {
    let Some((&unused, bits)) = tlv.content.split_first() else {
        return Err(err(tlv.offset, "BIT STRING without its unused-bits octet"));
    };
    if unused > 7 || (bits.is_empty() && unused != 0) {
        return Err(err(tlv.offset, "BIT STRING unused-bits count out of range"));
    }
    let last = bits.last().copied().unwrap_or(0);
    if last & ((1u8 << unused) - 1) != 0 {
        return Err(err(tlv.offset, "BIT STRING padding bits not zero"));
    }
    if named && !bits.is_empty() && last & (1u8 << unused) == 0 {
        return Err(err(tlv.offset, "named bit list with trailing zero bits"));
    }
    Ok(())
}

/// RFC 5280 §4.1.2.5: `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`, digits and a final Z.
fn check_time(tlv: &Tlv<'_>, len: usize) -> Result<(), DerError> {
    let c = tlv.content;
    let ok = c.len() == len && c.last() == Some(&b'Z') && c[..len - 1].iter().all(u8::is_ascii_digit);
    if ok { Ok(()) } else { Err(err(tlv.offset, "time not in the DER/RFC 5280 form ending in Z")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(der: &[u8]) -> &'static str {
        check_strict(der).unwrap_err().rule
    }

    #[test]
    fn minimal_encodings_pass() {
        // SEQUENCE { INTEGER 127, INTEGER 128, BOOLEAN TRUE, SET { NULL } }
        check_strict(&[0x30, 0x0e, 0x02, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x80, 0x01, 0x01, 0xff, 0x31, 0x02, 0x05, 0x00])
            .unwrap();
    }

    #[test]
    fn explicit_ca_false_in_basic_constraints_is_refused() {
        // Extension { basicConstraints, critical, OCTET STRING { SEQUENCE { BOOLEAN FALSE } } }:
        // what rcgen's IsCa::ExplicitNoCa wrote.
        let ext =
            [0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0x00];
        assert_eq!(rule(&ext), "BOOLEAN FALSE encoded (a DEFAULT value in X.509)");
        // The empty SEQUENCE is the strict form.
        check_strict(&[0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00]).unwrap();
        // Inside an extension value too: a non-minimal length in the inner SEQUENCE.
        let inner =
            [0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x81, 0x02, 0x05, 0x00];
        assert_eq!(rule(&inner), "long-form length below 128");
    }

    #[test]
    fn non_minimal_lengths_and_integers_are_refused() {
        assert_eq!(rule(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x01]), "long-form length below 128");
        assert_eq!(rule(&[0x30, 0x80, 0x00, 0x00]), "indefinite length");
        assert_eq!(rule(&[0x02, 0x02, 0x00, 0x01]), "INTEGER with a redundant leading 0x00");
        assert_eq!(rule(&[0x02, 0x02, 0xff, 0x80]), "INTEGER with a redundant leading 0xFF");
        assert_eq!(rule(&[0x02, 0x01, 0x01, 0x00]), "trailing bytes after the value");
    }

    #[test]
    fn key_usage_with_trailing_zero_bits_is_refused() {
        // keyUsage digitalSignature: BIT STRING 07 80 is strict; 00 80 (7 trailing zeros) is not.
        let ku = |unused: u8| [0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x04, 0x04, 0x03, 0x02, unused, 0x80];
        check_strict(&ku(7)).unwrap();
        assert_eq!(rule(&ku(0)), "named bit list with trailing zero bits");
    }

    #[test]
    fn unsorted_set_and_bad_times_are_refused() {
        assert_eq!(rule(&[0x31, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01]), "SET OF elements not sorted");
        let mut t = vec![0x17, 0x0d];
        t.extend_from_slice(b"260101000000+");
        assert_eq!(rule(&t), "time not in the DER/RFC 5280 form ending in Z");
    }
}
