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

/// Upper bound on the inflated COSE message. A DCC with a full dose history is under 2 KiB;
/// 32 KiB leaves room for foreign certificates while stopping zlib bombs (a 2.9 KB QR payload
/// could otherwise inflate to megabytes).
pub const MAX_INFLATED_LEN: usize = 32 * 1024;

/// `HC1:` + Base45(zlib(cose)).
pub(crate) fn encode(cose: &[u8]) -> String {
    let z = crate::passport::deflate::zlib_compress(cose);
    let mut out = String::with_capacity(HC1_PREFIX.len() + z.len() * 3 / 2 + 2);
    out.push_str(HC1_PREFIX);
    out.push_str(&base45::encode(&z));
    out
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
    let compressed = base45::decode(body).map_err(|_| DecodeError::Base45)?;
    inflate(&compressed)
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
