//! The verification reason codes of SPEC §6.

use serde::Serialize;

use crate::passport::DecodeError;
use crate::pki::ChainError;

/// Why a passport was accepted or rejected: SPEC §6's codes in its order, then SPEC §9.1's.
/// The order the checks after the signature run in is `ReasonCode::order`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// Every check passed.
    Ok,
    /// The text does not start with `HC1:`.
    InvalidPrefix,
    /// The text is not Base45 (RFC 9285), or longer than a QR code holds.
    Base45DecodingFailed,
    /// The zlib stream is broken or inflates past the bound.
    DecompressionFailed,
    /// Not a COSE_Sign1 message (RFC 9052).
    CoseDecodingFailed,
    /// Not a CWT with an `hcert` claim (RFC 8392).
    CwtDecodingFailed,
    /// The DCC does not have the schema's shape.
    SchemaValidationFailed,
    /// Neither ES256 nor PS256.
    UnsupportedAlgorithm,
    /// No trusted signer has the passport's kid.
    KeyNotInTrustList,
    /// The signature does not verify with any candidate signer.
    SignatureInvalid,
    /// The signer does not chain to a trusted root.
    ChainInvalid,
    /// The signer certificate is not yet valid.
    SignerNotYetValid,
    /// The signer certificate has expired.
    SignerExpired,
    /// The signer certificate is revoked.
    SignerRevoked,
    /// The signer's EKU excludes this passport's type.
    KeyUsageMismatch,
    /// `iat` is in the future.
    NotYetValid,
    /// `exp` is in the past.
    Expired,
    /// The passport itself is revoked.
    Revoked,
    /// The text is none of the supported formats (SPEC §9.1).
    UnsupportedFormat,
    /// An SHC or VDS-NC whose structure cannot be read (SPEC §9.1).
    FormatInvalid,
}

impl ReasonCode {
    /// Every code, in SPEC §6 order, then the two of SPEC §9.1.
    pub const ALL: [ReasonCode; 20] = [
        ReasonCode::Ok,
        ReasonCode::InvalidPrefix,
        ReasonCode::Base45DecodingFailed,
        ReasonCode::DecompressionFailed,
        ReasonCode::CoseDecodingFailed,
        ReasonCode::CwtDecodingFailed,
        ReasonCode::SchemaValidationFailed,
        ReasonCode::UnsupportedAlgorithm,
        ReasonCode::KeyNotInTrustList,
        ReasonCode::SignatureInvalid,
        ReasonCode::ChainInvalid,
        ReasonCode::SignerNotYetValid,
        ReasonCode::SignerExpired,
        ReasonCode::SignerRevoked,
        ReasonCode::KeyUsageMismatch,
        ReasonCode::NotYetValid,
        ReasonCode::Expired,
        ReasonCode::Revoked,
        ReasonCode::UnsupportedFormat,
        ReasonCode::FormatInvalid,
    ];

    /// The code as SPEC §6 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Ok => "OK",
            ReasonCode::InvalidPrefix => "INVALID_PREFIX",
            ReasonCode::Base45DecodingFailed => "BASE45_DECODING_FAILED",
            ReasonCode::DecompressionFailed => "DECOMPRESSION_FAILED",
            ReasonCode::CoseDecodingFailed => "COSE_DECODING_FAILED",
            ReasonCode::CwtDecodingFailed => "CWT_DECODING_FAILED",
            ReasonCode::SchemaValidationFailed => "SCHEMA_VALIDATION_FAILED",
            ReasonCode::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            ReasonCode::KeyNotInTrustList => "KEY_NOT_IN_TRUST_LIST",
            ReasonCode::SignatureInvalid => "SIGNATURE_INVALID",
            ReasonCode::ChainInvalid => "CHAIN_INVALID",
            ReasonCode::SignerNotYetValid => "SIGNER_NOT_YET_VALID",
            ReasonCode::SignerExpired => "SIGNER_EXPIRED",
            ReasonCode::SignerRevoked => "SIGNER_REVOKED",
            ReasonCode::KeyUsageMismatch => "KEY_USAGE_MISMATCH",
            ReasonCode::NotYetValid => "NOT_YET_VALID",
            ReasonCode::Expired => "EXPIRED",
            ReasonCode::Revoked => "REVOKED",
            ReasonCode::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            ReasonCode::FormatInvalid => "FORMAT_INVALID",
        }
    }

    /// Position among the checks after the signature, for ranking kid candidates.
    pub(crate) fn order(self) -> usize {
        match self {
            // Evaluated after a verified signature: the claims, then the signer, then times.
            ReasonCode::CwtDecodingFailed => 1,
            ReasonCode::SchemaValidationFailed => 2,
            ReasonCode::SignerNotYetValid => 3,
            ReasonCode::SignerExpired => 4,
            ReasonCode::ChainInvalid => 5,
            ReasonCode::SignerRevoked => 6,
            ReasonCode::KeyUsageMismatch => 7,
            ReasonCode::NotYetValid => 8,
            ReasonCode::Expired => 9,
            ReasonCode::Revoked => 10,
            ReasonCode::Ok => 11,
            ReasonCode::InvalidPrefix
            | ReasonCode::Base45DecodingFailed
            | ReasonCode::DecompressionFailed
            | ReasonCode::CoseDecodingFailed
            | ReasonCode::UnsupportedAlgorithm
            | ReasonCode::KeyNotInTrustList
            | ReasonCode::SignatureInvalid
            | ReasonCode::UnsupportedFormat
            | ReasonCode::FormatInvalid => 0,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&DecodeError> for ReasonCode {
    fn from(e: &DecodeError) -> ReasonCode {
        match e {
            DecodeError::InvalidPrefix => ReasonCode::InvalidPrefix,
            DecodeError::TooLong { .. } | DecodeError::Base45 => ReasonCode::Base45DecodingFailed,
            DecodeError::Decompression => ReasonCode::DecompressionFailed,
            DecodeError::Cose => ReasonCode::CoseDecodingFailed,
            DecodeError::Cwt(_) => ReasonCode::CwtDecodingFailed,
            DecodeError::Schema(_) => ReasonCode::SchemaValidationFailed,
        }
    }
}

impl From<&ChainError> for ReasonCode {
    fn from(e: &ChainError) -> ReasonCode {
        match e {
            ChainError::ChainInvalid { .. } => ReasonCode::ChainInvalid,
            ChainError::SignerNotYetValid { .. } => ReasonCode::SignerNotYetValid,
            ChainError::SignerExpired { .. } => ReasonCode::SignerExpired,
            ChainError::SignerRevoked => ReasonCode::SignerRevoked,
            ChainError::KeyUsageMismatch => ReasonCode::KeyUsageMismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_exactly_the_specs_list() {
        let spec = "OK, INVALID_PREFIX, BASE45_DECODING_FAILED, DECOMPRESSION_FAILED, COSE_DECODING_FAILED, \
                    CWT_DECODING_FAILED, SCHEMA_VALIDATION_FAILED, UNSUPPORTED_ALGORITHM, KEY_NOT_IN_TRUST_LIST, \
                    SIGNATURE_INVALID, CHAIN_INVALID, SIGNER_NOT_YET_VALID, SIGNER_EXPIRED, SIGNER_REVOKED, \
                    KEY_USAGE_MISMATCH, NOT_YET_VALID, EXPIRED, REVOKED, UNSUPPORTED_FORMAT, FORMAT_INVALID";
        let ours: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(ours.join(", "), spec);
        for c in ReasonCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
