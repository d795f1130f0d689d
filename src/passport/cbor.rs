//! A minimal CBOR (RFC 8949) writer for the structures vaxpass signs.
//!
//! Why not ciborium's serializer? Issuing is bounded below by one ECDSA signature (~28 µs);
//! building the DCC through a generic `Value` tree costs ~6 µs, a fifth of the budget the
//! issue allows. The shapes we write are fixed (maps with integer or text keys, text, byte
//! strings, small integers), so writing the bytes directly is short and obviously correct.
//! Reading foreign CBOR is another matter and goes through ciborium (see `cose.rs`).

/// Appends CBOR items to a byte buffer.
#[derive(Default)]
pub(crate) struct CborWriter {
    buf: Vec<u8>,
}

impl CborWriter {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self { buf: Vec::with_capacity(n) }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.buf.push(m | n as u8);
        } else if n <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[m | 24, n as u8]);
        } else if n <= u64::from(u16::MAX) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= u64::from(u32::MAX) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A signed integer (major type 0 or 1).
    pub(crate) fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(0, v as u64);
        } else {
            // -1 - v is non-negative for every negative i64.
            self.head(1, (-1 - v) as u64);
        }
        self
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        self.head(3, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub(crate) fn array(&mut self, len: usize) -> &mut Self {
        self.head(4, len as u64);
        self
    }

    pub(crate) fn map(&mut self, len: usize) -> &mut Self {
        self.head(5, len as u64);
        self
    }

    pub(crate) fn tag(&mut self, tag: u64) -> &mut Self {
        self.head(6, tag);
        self
    }

    /// Appends an already encoded CBOR item.
    #[cfg(test)]
    pub(crate) fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(b: &[u8]) -> ciborium::Value {
        ciborium::de::from_reader(b).unwrap()
    }

    #[test]
    fn integers_round_trip_through_ciborium_at_every_width() {
        for v in [0i64, 23, 24, 255, 256, 65535, 65536, 1 << 40, -1, -24, -25, -65537, i64::MIN] {
            let mut w = CborWriter::default();
            w.int(v);
            let got = decode(&w.into_bytes());
            assert_eq!(got, ciborium::Value::Integer(v.into()), "{v}");
        }
    }

    #[test]
    fn nested_map_round_trips() {
        let mut w = CborWriter::default();
        w.tag(18).map(2).int(1).text("VN").text("k").bytes(&[1, 2, 3]);
        let got = decode(&w.into_bytes());
        let ciborium::Value::Tag(18, inner) = got else { panic!("no tag") };
        assert_eq!(
            *inner,
            ciborium::Value::Map(vec![(1.into(), "VN".into()), ("k".into(), ciborium::Value::Bytes(vec![1, 2, 3])),])
        );
    }
}
