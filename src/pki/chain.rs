//! Path validation from a facility DSC to a Ministry root, through provincial CAs. The only
//! file that calls rustls-webpki: it checks signatures, validity of every certificate in the
//! path, basicConstraints and pathLen. EKU policy is ours ([`super::policy`]), so webpki is
//! handed a validator that accepts any EKU.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::ChainError;
use super::cert::Certificate;

/// The anchors and intermediates paths are built from, in webpki's form.
pub(crate) struct PathSet {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
}

/// A validated path: the subjects from the signer up to the root, and the interval in which
/// every certificate on it is valid (so the result can be cached and reused within it).
#[derive(Debug, Clone)]
pub struct ValidatedPath {
    /// Subjects, DSC first, root last.
    pub subjects: Vec<String>,
    /// Latest notBefore on the path (Unix seconds).
    pub valid_from: i64,
    /// Earliest notAfter on the path (Unix seconds).
    pub valid_until: i64,
}

struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

impl PathSet {
    pub(crate) fn new(anchors: &[Certificate], intermediates: &[Certificate]) -> PathSet {
        PathSet {
            anchors: anchors
                .iter()
                .filter_map(|c| {
                    webpki::anchor_from_trusted_cert(&CertificateDer::from(c.der())).ok().map(|a| a.to_owned())
                })
                .collect(),
            intermediates: intermediates.iter().map(|c| CertificateDer::from(c.der().to_vec())).collect(),
        }
    }

    /// Validates `dsc` at `at` (Unix seconds). `anchors`/`intermediates` must be the slices
    /// this set was built from, to report subjects and validity.
    pub(crate) fn validate(
        &self,
        dsc: &Certificate,
        anchors: &[Certificate],
        intermediates: &[Certificate],
        at: i64,
    ) -> Result<ValidatedPath, ChainError> {
        let der = CertificateDer::from(dsc.der());
        let ee = EndEntityCert::try_from(&der).map_err(chain_error)?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at).unwrap_or(0)));
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &self.intermediates,
                time,
                AnyEku,
                None,
                None,
            )
            .map_err(chain_error)?;

        let mut on_path: Vec<&Certificate> = vec![dsc];
        for inter in path.intermediate_certificates() {
            if let Some(c) = intermediates.iter().find(|c| c.der() == inter.der().as_ref()) {
                on_path.push(c);
            }
        }
        // A provincial CA certifies only its own province's facilities (issue #8 item 16);
        // webpki yields the DSC's issuer first. The root may certify any province.
        if let (Some(code), Some(issuer)) = (&dsc.facility_code, on_path.get(1)) {
            super::policy::check_issuer_province(code, issuer)?;
        }
        let anchor_index = self.anchors.iter().position(|a| std::ptr::eq(a, path.anchor()));
        if let Some(root) = anchor_index.and_then(|i| anchors.get(i)) {
            // webpki does not check a trust anchor's own validity; a Ministry root that has
            // expired must not keep vouching for facilities.
            if let Some((nb, na)) = root.validity
                && (at < nb || at > na)
            {
                return Err(ChainError::ChainInvalid {
                    detail: "the root certificate is not valid at this time".into(),
                });
            }
            on_path.push(root);
        }
        let valid_from = on_path.iter().filter_map(|c| c.validity).map(|v| v.0).max().unwrap_or(i64::MIN);
        let valid_until = on_path.iter().filter_map(|c| c.validity).map(|v| v.1).min().unwrap_or(i64::MAX);
        Ok(ValidatedPath { subjects: on_path.iter().map(|c| c.subject.clone()).collect(), valid_from, valid_until })
    }
}

/// The one translation point from webpki's errors (STYLE §3).
fn chain_error(e: webpki::Error) -> ChainError {
    use webpki::Error as E;
    let detail = match e {
        E::UnknownIssuer => "no path to a trusted root".to_owned(),
        E::CertExpired { .. } => "a certificate on the path has expired".to_owned(),
        E::CertNotValidYet { .. } => "a certificate on the path is not yet valid".to_owned(),
        E::CaUsedAsEndEntity => "the signer is a CA certificate".to_owned(),
        E::EndEntityUsedAsCa => "an end-entity certificate is used as a CA".to_owned(),
        E::PathLenConstraintViolated => "the path is longer than a CA's pathLen allows".to_owned(),
        E::InvalidSignatureForPublicKey => "a certificate's signature does not verify".to_owned(),
        other => format!("{other:?}"),
    };
    ChainError::ChainInvalid { detail }
}
