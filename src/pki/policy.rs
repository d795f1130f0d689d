//! Certificate policy for passport signers: which extended key usages allow which passport
//! type (SPEC §2; EU hcert spec §5.1.1).

/// What a passport attests, as far as key usage is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Test results, EKU arc `.1`.
    Test,
    /// Vaccinations, EKU arc `.2`.
    Vaccination,
    /// Recoveries, EKU arc `.3`.
    Recovery,
}

/// The EKU arc vaxpass writes into facility DSCs: `1.3.6.1.4.1.1847.2021.1.2` (vaccination).
pub(crate) const EKU_VACCINATION_ARCS: [u64; 10] = [1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2];

/// id-kp-documentSigning (RFC 9336): the purpose of the trust-list signer, and of nothing
/// else in the hierarchy. Facility DSCs never carry it.
pub(crate) const EKU_DOCUMENT_SIGNING_ARCS: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 3, 36];
const EKU_DOCUMENT_SIGNING: &str = "1.3.6.1.5.5.7.3.36";

/// The EU arcs and the variant with an extra `.0` seen in production certificates.
const EKU_PREFIXES: [&str; 2] = ["1.3.6.1.4.1.1847.2021.1.", "1.3.6.1.4.1.0.1847.2021.1."];

fn purpose_of(oid: &str) -> Option<Purpose> {
    let last = EKU_PREFIXES.iter().find_map(|p| oid.strip_prefix(p))?;
    match last {
        "1" => Some(Purpose::Test),
        "2" => Some(Purpose::Vaccination),
        "3" => Some(Purpose::Recovery),
        _ => None,
    }
}

/// Whether a signer with these EKUs (`None`: no EKU extension) may sign `purpose`. A DSC with
/// none of the health-certificate EKUs may sign any type; one with some of them only those.
pub(crate) fn allows(ekus: Option<&[String]>, purpose: Purpose) -> bool {
    let mut any_health_eku = false;
    for oid in ekus.unwrap_or_default() {
        if let Some(p) = purpose_of(oid) {
            if p == purpose {
                return true;
            }
            any_health_eku = true;
        }
    }
    !any_health_eku
}

/// Whether a certificate with these EKUs may sign the trust list: it must name the
/// document-signing purpose and none of the health-certificate ones, so that no facility DSC,
/// wherever it sits in the hierarchy, can publish trust.
pub(crate) fn may_sign_trust_list(ekus: Option<&[String]>) -> bool {
    let ekus = ekus.unwrap_or_default();
    ekus.iter().any(|o| o == EKU_DOCUMENT_SIGNING) && !ekus.iter().any(|o| purpose_of(o).is_some())
}

/// Purposes of other roles (RFC 5280 §4.2.1.12, RFC 9336): a certificate that names one of
/// them is a TLS server or client, a code, OCSP or time-stamp signer, or the trust-list
/// signer, and never signs passports, whatever other EKUs it carries.
const FOREIGN_ROLE_EKUS: [(&str, &str); 6] = [
    ("1.3.6.1.5.5.7.3.1", "TLS server authentication"),
    ("1.3.6.1.5.5.7.3.2", "TLS client authentication"),
    ("1.3.6.1.5.5.7.3.3", "code signing"),
    ("1.3.6.1.5.5.7.3.8", "time stamping"),
    ("1.3.6.1.5.5.7.3.9", "OCSP signing"),
    (EKU_DOCUMENT_SIGNING, "document signing (the trust-list signer)"),
];

/// Why a certificate of the Ministry hierarchy may not sign passports (issue #8 items 11
/// and 16).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerPolicyError {
    /// basicConstraints CA:true.
    #[error("a CA certificate never signs passports")]
    Ca,
    /// No `serialNumber=PPNNN` in the subject.
    #[error("not a facility DSC: the subject has no facility code (serialNumber=PPNNN)")]
    NoFacilityCode,
    /// An EKU of another role.
    #[error("a certificate for {0} never signs passports")]
    ForeignRole(&'static str),
    /// A provincial CA certified a facility of another province.
    #[error("facility {code} is outside province {province} of the CA that certified it")]
    OutsideProvince {
        /// The DSC's facility code.
        code: String,
        /// The issuing CA's province.
        province: String,
    },
}

impl From<SignerPolicyError> for super::ChainError {
    /// An EKU of another role is `KEY_USAGE_MISMATCH` (what the EKU check reports for a DSC
    /// whose EKUs exclude the passport's type); a signer outside the facility profile or its
    /// CA's province is `CHAIN_INVALID`, as a name-constraint violation is in RFC 5280 path
    /// validation.
    fn from(e: SignerPolicyError) -> super::ChainError {
        match e {
            SignerPolicyError::ForeignRole(_) => super::ChainError::KeyUsageMismatch,
            other => super::ChainError::ChainInvalid { detail: other.to_string() },
        }
    }
}

/// Whether a certificate of the Ministry hierarchy may sign passports: an end entity with a
/// facility code in its subject and no EKU of another role. Run by `vaxpass sign` and the
/// service before signing, and by the verifier on every chained (not pinned) signer; pinned
/// foreign DSCs keep the EU model, where no facility code exists.
pub fn check_passport_signer(cert: &super::Certificate) -> Result<(), SignerPolicyError> {
    if cert.is_ca {
        return Err(SignerPolicyError::Ca);
    }
    if let Some((_, role)) = cert.ekus.iter().flatten().find_map(|oid| FOREIGN_ROLE_EKUS.iter().find(|(o, _)| o == oid))
    {
        return Err(SignerPolicyError::ForeignRole(role));
    }
    if cert.facility_code.is_none() {
        return Err(SignerPolicyError::NoFacilityCode);
    }
    Ok(())
}

/// Whether `issuer` may have certified the facility code `code`: a provincial CA only codes
/// of its own province (`PP` prefix); the Ministry root (no province) any code.
pub fn check_issuer_province(code: &str, issuer: &super::Certificate) -> Result<(), SignerPolicyError> {
    match &issuer.province {
        Some(p) if !code.starts_with(p.as_str()) => {
            Err(SignerPolicyError::OutsideProvince { code: code.to_owned(), province: p.clone() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(oids: &[&str]) -> Vec<String> {
        oids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_health_eku_allows_every_type() {
        assert!(allows(None, Purpose::Test));
        assert!(allows(Some(&v(&["1.3.6.1.5.5.7.3.4"])), Purpose::Recovery));
    }

    #[test]
    fn eku_excluding_the_type_is_refused() {
        let ekus = v(&["1.3.6.1.4.1.1847.2021.1.1"]);
        assert!(allows(Some(&ekus), Purpose::Test));
        assert!(!allows(Some(&ekus), Purpose::Vaccination));
    }

    #[test]
    fn production_variant_arc_counts() {
        let ekus = v(&["1.3.6.1.4.1.0.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.3"]);
        assert!(allows(Some(&ekus), Purpose::Vaccination));
        assert!(allows(Some(&ekus), Purpose::Recovery));
        assert!(!allows(Some(&ekus), Purpose::Test));
    }

    #[test]
    fn only_a_document_signer_without_health_ekus_signs_trust_lists() {
        assert!(may_sign_trust_list(Some(&v(&["1.3.6.1.5.5.7.3.36"]))));
        assert!(!may_sign_trust_list(None));
        assert!(!may_sign_trust_list(Some(&v(&["1.3.6.1.4.1.1847.2021.1.2"]))));
        assert!(!may_sign_trust_list(Some(&v(&["1.3.6.1.5.5.7.3.36", "1.3.6.1.4.1.0.1847.2021.1.2"]))));
    }

    #[test]
    fn our_arc_constant_is_vaccination() {
        let dotted: Vec<String> = EKU_VACCINATION_ARCS.iter().map(u64::to_string).collect();
        assert_eq!(purpose_of(&dotted.join(".")), Some(Purpose::Vaccination));
    }
}
