//! The transport layers of a passport: `HC1:` prefix, Base45 (RFC 9285) and zlib.
//!
//! Decoding is bounded at every step, because the text comes from an untrusted QR code:
//! the text length by what a QR code can hold, the inflated size by [`MAX_INFLATED_LEN`].

use flate2::{Decompress, FlushDecompress, Status};

use super::DecodeError;

/// The context identifier of an EU DCC health certificate, version 1 (hcert spec §4.1).
pub const HC1_PREFIX: &str = "HC1:";

/// The longest text a QR code holds in alphanumeric mode (version 40, ECC L: 4,296
/// characters). Anything longer did not come from a QR code and is refused before decoding.
pub const MAX_HC1_LEN: usize = 4296;

/// The longest text a printed passport may be: a QR code of version 40 at error correction
/// level Q, the level SPEC §3 and the hcert specification use, holds 1,852 alphanumeric
/// characters (ISO/IEC 18004 table 7). The gate refuses to sign a passport longer than this.
pub const MAX_HC1_LEN_Q: usize = 1852;

/// Upper bound on the inflated COSE message. A DCC with a full dose history is under 2 KiB;
/// 32 KiB leaves room for foreign certificates while stopping zlib bombs (a 2.9 KB QR payload
/// could otherwise inflate to megabytes).
pub const MAX_INFLATED_LEN: usize = 32 * 1024;

/// `HC1:` + Base45(zlib(cose)).
pub(crate) fn encode(cose: &[u8]) -> String {
    let z = crate::passport::deflate::zlib_compress(cose);
    let mut out = Vec::with_capacity(HC1_PREFIX.len() + z.len() * 3 / 2 + 2);
    out.extend_from_slice(HC1_PREFIX.as_bytes());
    base45_encode_into(&z, &mut out);
    // Only the prefix and Base45 characters were written: ASCII, never input.
    #[allow(clippy::expect_used)]
    String::from_utf8(out).expect("the prefix and Base45 characters are ASCII")
}

/// Base45 (RFC 9285 §4.2): each two bytes become three characters, a last odd byte two,
/// least significant digit first.
fn base45_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + bytes.len() / 2 * 3 + bytes.len() % 2 * 2, 0);
    let dst = &mut out[start..];
    let mut pairs = bytes.chunks_exact(2);
    let mut triples = dst.chunks_exact_mut(3);
    for (pair, triple) in (&mut pairs).zip(&mut triples) {
        // u32 arithmetic: the divisions by 45 become multiplications.
        let n = u32::from(pair[0]) << 8 | u32::from(pair[1]);
        let (q, e) = (n / 45, n / 2025);
        triple.copy_from_slice(&[BASE45[(n - q * 45) as usize], BASE45[(q - e * 45) as usize], BASE45[e as usize]]);
    }
    if let ([b], [c, d]) = (pairs.remainder(), triples.into_remainder()) {
        (*c, *d) = (BASE45[usize::from(*b % 45)], BASE45[usize::from(*b / 45)]);
    }
}

/// Strips the prefix and decodes Base45 and zlib, returning the COSE bytes.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    // Scanners and stdin add trailing newlines; nothing else is forgiven.
    let text = text.trim_matches(|c: char| c == '\n' || c == '\r' || c == ' ' || c == '\t');
    let Some(body) = text.strip_prefix(HC1_PREFIX) else {
        return Err(DecodeError::InvalidPrefix);
    };
    if text.len() > MAX_HC1_LEN {
        return Err(DecodeError::TooLong { len: text.len() });
    }
    let compressed = base45_decode(body.as_bytes()).ok_or(DecodeError::Base45)?;
    inflate(&compressed)
}

/// The Base45 alphabet (RFC 9285 §4): the QR code alphanumeric set.
const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Character → value, 0xFF for characters outside the alphabet.
const BASE45_VALUES: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < BASE45.len() {
        t[BASE45[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// RFC 9285 decoding, table-driven (the verifier's hot path: about three times faster than
/// the base45 crate's). Refuses characters outside the alphabet, a dangling single character
/// and groups whose value does not fit their bytes.
fn base45_decode(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        let v = BASE45_VALUES[usize::from(c)];
        (v != 0xFF).then_some(u32::from(v))
    };
    let mut out = Vec::with_capacity(text.len() / 3 * 2 + 1);
    let mut groups = text.chunks_exact(3);
    for g in &mut groups {
        let n = value(g[0])? + value(g[1])? * 45 + value(g[2])? * 45 * 45;
        let [_, _, hi, lo] = n.to_be_bytes();
        if n > 0xFFFF {
            return None;
        }
        out.extend_from_slice(&[hi, lo]);
    }
    match *groups.remainder() {
        [] => {}
        [a, b] => {
            let n = value(a)? + value(b)? * 45;
            out.push(u8::try_from(n).ok()?);
        }
        _ => return None,
    }
    Some(out)
}

/// Inflates a zlib stream, refusing output past [`MAX_INFLATED_LEN`], truncated streams and
/// trailing garbage.
fn inflate(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    // One byte past the bound tells "exactly at the bound" from "over it".
    let limit = MAX_INFLATED_LEN + 1;
    let mut d = Decompress::new(true);
    let mut out = Vec::with_capacity((data.len() * 4).clamp(64, limit));
    loop {
        if out.len() >= limit {
            return Err(DecodeError::Decompression);
        }
        if out.len() == out.capacity() {
            let grown = (out.capacity() * 2).min(limit);
            out.reserve_exact(grown - out.len());
        }
        let consumed = d.total_in() as usize;
        let input = data.get(consumed..).ok_or(DecodeError::Decompression)?;
        let before_out = out.len();
        let status =
            d.decompress_vec(input, &mut out, FlushDecompress::Finish).map_err(|_| DecodeError::Decompression)?;
        match status {
            Status::StreamEnd if out.len() <= MAX_INFLATED_LEN && d.total_in() as usize == data.len() => {
                return Ok(out);
            }
            // Over the bound, or trailing bytes after the end of the stream.
            Status::StreamEnd => return Err(DecodeError::Decompression),
            Status::Ok | Status::BufError => {
                let progressed = d.total_in() as usize > consumed || out.len() > before_out;
                if !progressed && out.len() < out.capacity() {
                    // No progress with room to spare: the input ended mid-stream.
                    return Err(DecodeError::Decompression);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 7) as u8).collect();
        let text = encode(&data);
        assert!(text.starts_with("HC1:"));
        assert_eq!(decode(&text).unwrap(), data);
    }

    #[test]
    fn missing_prefix_is_invalid_prefix() {
        let text = encode(b"abc");
        assert_eq!(decode(&text[4..]), Err(DecodeError::InvalidPrefix));
        assert_eq!(decode(&text.replace("HC1:", "HC2:")), Err(DecodeError::InvalidPrefix));
    }

    #[test]
    fn base45_matches_rfc_9285_examples_and_the_base45_crate() {
        // RFC 9285 §4.3: "AB" -> "BB8", "Hello!!" -> "%69 VD92EX0", "base-45" -> "UJCLQE7W581".
        assert_eq!(base45_decode(b"BB8").unwrap(), b"AB");
        assert_eq!(base45_decode(b"%69 VD92EX0").unwrap(), b"Hello!!");
        assert_eq!(base45_decode(b"UJCLQE7W581").unwrap(), b"base-45");
        assert_eq!(base45_decode(b"GGW"), None, "65536 does not fit two bytes");
        assert_eq!(base45_decode(b"ZZ"), None, "2024 does not fit one byte");
        let data: Vec<u8> = (0..=255u8).collect();
        assert_eq!(base45_decode(base45::encode(&data).as_bytes()).unwrap(), data);
    }

    fn our_base45(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        base45_encode_into(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn base45_encoder_matches_rfc_9285_examples() {
        assert_eq!(our_base45(b"AB"), "BB8");
        assert_eq!(our_base45(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(our_base45(b"base-45"), "UJCLQE7W581");
        assert_eq!(our_base45(b""), "");
    }

    proptest::proptest! {
        #[test]
        fn base45_encoder_agrees_with_the_base45_crate(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            proptest::prop_assert_eq!(our_base45(&bytes), base45::encode(&bytes));
        }

        /// The base45 crate also accepts over-large groups ("AA" = 460 in one byte) and
        /// truncates them; RFC 9285 §6 requires rejecting them. Otherwise the two agree.
        #[test]
        fn base45_decoder_agrees_with_the_base45_crate(s in "[0-9A-Z $%*+./:a-z-]{0,40}") {
            let ours = base45_decode(s.as_bytes());
            let theirs = base45::decode(&s).ok();
            if let Some(bytes) = &ours {
                proptest::prop_assert_eq!(Some(bytes), theirs.as_ref());
            }
            if let Some(bytes) = &theirs && base45::encode(bytes) == s {
                proptest::prop_assert_eq!(Some(bytes), ours.as_ref());
            }
        }
    }

    #[test]
    fn bad_base45_is_base45_error() {
        assert_eq!(decode("HC1:abc"), Err(DecodeError::Base45));
        assert_eq!(decode("HC1:A"), Err(DecodeError::Base45));
    }

    #[test]
    fn zlib_bomb_is_refused() {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 1024 * 1024]).unwrap();
        let z = e.finish().unwrap();
        let text = format!("HC1:{}", base45::encode(&z));
        assert!(text.len() < MAX_HC1_LEN);
        assert_eq!(decode(&text), Err(DecodeError::Decompression));
    }

    #[test]
    fn truncated_zlib_is_refused() {
        let data: Vec<u8> = (0..500u32).map(|i| (i * 31 % 251) as u8).collect();
        let z = crate::passport::deflate::zlib_compress(&data);
        for cut in [1, 5, z.len() / 2, z.len() - 1] {
            let text = format!("HC1:{}", base45::encode(&z[..cut]));
            assert_eq!(decode(&text), Err(DecodeError::Decompression), "cut {cut}");
        }
    }

    #[test]
    fn uncompressed_payload_is_refused() {
        let text = format!("HC1:{}", base45::encode([0xd2, 0x84, 0x40, 0xa0]));
        assert_eq!(decode(&text), Err(DecodeError::Decompression));
    }

    #[test]
    fn inflates_exactly_up_to_the_bound() {
        let data = vec![7u8; MAX_INFLATED_LEN];
        assert_eq!(inflate(&crate::passport::deflate::zlib_compress(&data)).unwrap().len(), MAX_INFLATED_LEN);
        let data = vec![7u8; MAX_INFLATED_LEN + 1];
        assert_eq!(inflate(&crate::passport::deflate::zlib_compress(&data)), Err(DecodeError::Decompression));
    }
}
