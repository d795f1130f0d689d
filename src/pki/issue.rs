//! Issuing the hierarchy of SPEC §2 with rcgen: the Ministry root, provincial CAs, facility
//! DSCs (directly or from a facility's CSR).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::SecureRandom as _;
use time::{Duration, OffsetDateTime};

use super::cert::SignerKey;
use super::cert::{Certificate, parse_certificates};
use super::der::{DerError, check_strict};
use super::keys::{FileError, pkcs8_from_pem, read_file};
use super::pkcs11::{Pkcs11Uri, Purpose, TokenError, TokenKey, TokenKeyType, is_pkcs11_uri};
use super::policy::EKU_VACCINATION_ARCS;
use crate::provinces::{is_facility_code, province_name};

/// Longest validity of a facility DSC (SPEC §2: at most 2 years).
pub const MAX_FACILITY_DAYS: u32 = 730;
/// Default validity of a root: 20 years, so that the offline root outlives many DSCs.
pub const DEFAULT_ROOT_DAYS: u32 = 7305;
/// Default validity of a provincial CA: 10 years.
pub const DEFAULT_CA_DAYS: u32 = 3652;
/// Default root common name.
pub const DEFAULT_ROOT_CN: &str = "Bộ Y tế Việt Nam - Ministry of Health Viet Nam Root CA";

/// Largest CSR file read.
const MAX_CSR_BYTES: usize = 64 * 1024;
const OID_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];
const OID_BASIC_CONSTRAINTS: [u64; 4] = [2, 5, 29, 19];
const ORGANIZATION: &str = "Bộ Y tế - Ministry of Health";

/// Why something could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A key or certificate file problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// The facility code is not PPNNN with a known province.
    #[error("facility code {0:?} is not 5 digits PPNNN with a known province code")]
    FacilityCode(String),
    /// The province is not a 2-digit GSO code.
    #[error("province {0:?} is not a 2-digit GSO province code (01 Hà Nội … 96 Cà Mau)")]
    Province(String),
    /// Validity out of bounds.
    #[error("--days {days} is out of range (1..={max})")]
    Days {
        /// Requested.
        days: u32,
        /// Allowed maximum.
        max: u32,
    },
    /// The facility name is empty.
    #[error("the facility name is empty")]
    EmptyName,
    /// A key in a PKCS#11 token (SPEC §10).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The certificate could not be built or signed.
    #[error("cannot issue the certificate")]
    Rcgen(#[from] rcgen::Error),
    /// What would be written is not strict DER (SPEC §10); nothing is written.
    #[error("the issued {what} is not strict DER")]
    NotStrictDer {
        /// "certificate" or "certificate signing request".
        what: &'static str,
        /// The rule broken.
        #[source]
        source: DerError,
    },
    /// A provincial CA may only certify its own province's facilities (issue #8 item 16).
    #[error("the issuer is the provincial CA of province {province}: it cannot certify facility {code}")]
    OutsideProvince {
        /// The requested facility code.
        code: String,
        /// The issuer's province.
        province: String,
    },
    /// Only the Ministry root certifies provincial CAs (they have pathLen 0).
    #[error("only the Ministry root (a self-issued CA) issues provincial CAs")]
    NotRoot,
    /// Only the root or a provincial CA certifies facilities.
    #[error("the issuer is neither the Ministry root nor a provincial CA (\"… - Provincial CA PP\")")]
    NotAFacilityIssuer,
}

/// Refuses an encoding strict parsers would refuse (SPEC §10).
fn strict(der: &[u8], what: &'static str) -> Result<(), IssueError> {
    check_strict(der).map_err(|source| IssueError::NotStrictDer { what, source })
}

/// Newly issued files, as PEM text.
pub struct Issued {
    /// PKCS#8 private key (absent for `sign-csr`, where the facility keeps its key).
    pub key_pem: Option<String>,
    /// The certificate.
    pub cert_pem: String,
    /// The certificate followed by its issuer's (what a facility installs).
    pub chain_pem: Option<String>,
}

/// An issuer's private key: a PKCS#8 file (rcgen signs with ring) or a key in a PKCS#11
/// token (SPEC §10), which rcgen signs through [`rcgen::SigningKey`].
pub enum IssuerKey {
    /// A PKCS#8 PEM file.
    File(KeyPair),
    /// A token key.
    Token(TokenKey),
}

impl IssuerKey {
    /// Opens `--issuer-key`: a `pkcs11:` URI or a PKCS#8 PEM file.
    pub fn open(arg: &Path) -> Result<IssuerKey, IssueError> {
        if let Some(uri) = arg.to_str().filter(|a| is_pkcs11_uri(a)) {
            return Ok(IssuerKey::Token(TokenKey::open(&Pkcs11Uri::parse(uri)?)?));
        }
        let key_bytes = read_file(arg)?;
        let der = pkcs8_from_pem(arg, &key_bytes)?;
        let key = KeyPair::try_from(der.as_slice())
            .map_err(|e| FileError::content(arg, format!("unusable private key ({e})")))?;
        Ok(IssuerKey::File(key))
    }

    /// The public key, as a certificate carries it.
    pub fn public_key(&self) -> SignerKey {
        match self {
            IssuerKey::Token(k) => k.public_key().clone(),
            IssuerKey::File(k) if k.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 => {
                SignerKey::EcP256(k.public_key_raw().to_vec())
            }
            IssuerKey::File(k) if k.algorithm() == &rcgen::PKCS_RSA_SHA256 => {
                SignerKey::Rsa(k.public_key_raw().to_vec())
            }
            IssuerKey::File(_) => SignerKey::Unsupported,
        }
    }
}

impl rcgen::PublicKeyData for IssuerKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            IssuerKey::File(k) => k.der_bytes(),
            IssuerKey::Token(k) => match k.public_key() {
                SignerKey::EcP256(p) | SignerKey::Rsa(p) => p,
                SignerKey::Unsupported => &[],
            },
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            IssuerKey::File(k) => k.algorithm(),
            IssuerKey::Token(k) => match k.public_key() {
                SignerKey::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
                _ => &rcgen::PKCS_ECDSA_P256_SHA256,
            },
        }
    }
}

impl rcgen::SigningKey for IssuerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            IssuerKey::File(k) => k.sign(msg),
            IssuerKey::Token(k) => k.sign(msg, Purpose::X509).map_err(|_| rcgen::Error::RemoteKeyError),
        }
    }
}

/// A CA's key and certificate, loaded and checked to belong together.
pub struct CaFiles {
    key: IssuerKey,
    cert: Certificate,
    cert_pem: String,
}

impl CaFiles {
    /// Loads an issuer's key (a PKCS#8 file or a `pkcs11:` URI) and certificate. Fails,
    /// naming the file, if the key is unusable, the certificate is not a CA, or the two do
    /// not match.
    pub fn load(key_path: &Path, cert_path: &Path) -> Result<CaFiles, IssueError> {
        let key = IssuerKey::open(key_path)?;
        let cert_bytes = read_file(cert_path)?;
        let cert = parse_certificates(&cert_bytes, true)
            .map_err(|e| FileError::content(cert_path, e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| FileError::content(cert_path, "no CERTIFICATE block"))?;
        if !cert.is_ca {
            return Err(FileError::content(cert_path, "not a CA certificate (basicConstraints CA:false)").into());
        }
        if cert.key != key.public_key() || cert.key == SignerKey::Unsupported {
            return Err(FileError::content(
                key_path,
                format!("does not match the certificate {}", cert_path.display()),
            )
            .into());
        }
        let cert_pem = cert.to_pem();
        Ok(CaFiles { key, cert, cert_pem })
    }

    fn issuer(&self) -> Result<Issuer<'static, &IssuerKey>, IssueError> {
        Ok(Issuer::from_ca_cert_der(&self.cert.der().to_vec().into(), &self.key)?)
    }

    /// The issuer's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    // SystemRandom only fails if the OS has no entropy source, in which case nothing is safe.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[0] &= 0x7f; // positive INTEGER
    SerialNumber::from_slice(&b)
}

fn base_params(dn: DistinguishedName, days: u32, now: OffsetDateTime, issuer: Option<&CaFiles>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.serial_number = Some(random_serial());
    // Back-date an hour: clocks of verifiers in the field are not all exact.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    p.not_before = now - Duration::hours(1);
    // Counted from notBefore, so that `days` bounds the whole validity period (SPEC §2).
    let mut not_after = p.not_before + Duration::days(i64::from(days));
    // A certificate must not outlive its issuer.
    if let Some((_, issuer_end)) = issuer.and_then(|i| i.cert.validity)
        && let Ok(end) = OffsetDateTime::from_unix_timestamp(issuer_end)
    {
        not_after = not_after.min(end);
    }
    p.not_after = not_after;
    p.use_authority_key_identifier_extension = issuer.is_some();
    p
}

fn check_days(days: u32, max: u32) -> Result<(), IssueError> {
    if days == 0 || days > max { Err(IssueError::Days { days, max }) } else { Ok(()) }
}

fn finish(params: &CertificateParams, key: KeyPair, issuer: Option<&CaFiles>) -> Result<Issued, IssueError> {
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.issuer()?)?,
        None => params.self_signed(&key)?,
    };
    strict(cert.der(), "certificate")?;
    let cert_pem = cert.pem();
    Ok(Issued {
        key_pem: Some(key.serialize_pem()),
        chain_pem: issuer.map(|ca| format!("{cert_pem}{}", ca.cert_pem)),
        cert_pem,
    })
}

fn root_params(cn: &str, days: u32, now: OffsetDateTime) -> Result<CertificateParams, IssueError> {
    check_days(days, 36525)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CountryName, "VN");
    let mut p = base_params(dn, days, now, None);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

/// The Ministry root: self-signed, CA without path length limit, keyCertSign + cRLSign.
pub fn init_root(cn: &str, days: u32, now: OffsetDateTime) -> Result<Issued, IssueError> {
    finish(&root_params(cn, days, now)?, KeyPair::generate()?, None)
}

/// The Ministry root self-signed with an existing key (`--issuer-key`): a PKCS#8 file, or a
/// PKCS#11 URI (SPEC §10) naming the key, and if the token holds none under that label, a
/// non-extractable P-256 key pair is generated there. Only the certificate is written.
pub fn init_root_with_key(cn: &str, days: u32, now: OffsetDateTime, key_arg: &Path) -> Result<Issued, IssueError> {
    let params = root_params(cn, days, now)?;
    let key = match key_arg.to_str().filter(|a| is_pkcs11_uri(a)) {
        Some(uri) => {
            let uri = Pkcs11Uri::parse(uri)?;
            IssuerKey::Token(match TokenKey::open(&uri) {
                Err(TokenError::NoSuchObject { .. }) => TokenKey::generate(&uri, TokenKeyType::EcP256)?,
                other => other?,
            })
        }
        None => IssuerKey::open(key_arg)?,
    };
    let cert = params.self_signed(&key)?;
    strict(cert.der(), "certificate")?;
    Ok(Issued { key_pem: None, cert_pem: cert.pem(), chain_pem: None })
}

/// A provincial CA (Sở Y tế) under the root: CA with pathLen 0.
pub fn issue_ca(issuer: &CaFiles, province: &str, days: u32, now: OffsetDateTime) -> Result<Issued, IssueError> {
    check_days(days, 36525)?;
    if !issuer.cert.self_issued {
        return Err(IssueError::NotRoot);
    }
    let name = province_name(province).ok_or_else(|| IssueError::Province(province.to_owned()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Sở Y tế {name} - Provincial CA {province}"));
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CountryName, "VN");
    let mut p = base_params(dn, days, now, Some(issuer));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    finish(&p, KeyPair::generate()?, Some(issuer))
}

fn facility_dn(code: &str, name: &str) -> Result<DistinguishedName, IssueError> {
    if !is_facility_code(code) {
        return Err(IssueError::FacilityCode(code.to_owned()));
    }
    let name = crate::passport::translit::normalise_name(name);
    if name.is_empty() {
        return Err(IssueError::EmptyName);
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), rcgen::DnValue::PrintableString(code.try_into()?));
    dn.push(DnType::CountryName, "VN");
    Ok(dn)
}

/// `basicConstraints` of an end entity in strict DER: the empty SEQUENCE (cA FALSE is the
/// DEFAULT, which DER forbids encoding). rcgen's `IsCa::ExplicitNoCa` wrote `cA FALSE`, and
/// Python `cryptography` refused every facility DSC. Kept (rather than left out) so that the
/// certificate says "end entity" explicitly, as EU DSCs do; critical, as rcgen wrote it.
fn end_entity(p: &mut CertificateParams) {
    p.is_ca = IsCa::NoCa;
    let mut bc = CustomExtension::from_oid_content(&OID_BASIC_CONSTRAINTS, vec![0x30, 0x00]);
    bc.set_criticality(true);
    p.custom_extensions.push(bc);
}

fn facility_profile(p: &mut CertificateParams) {
    end_entity(p);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(EKU_VACCINATION_ARCS.to_vec())];
}

/// A facility DSC: CA:false, digitalSignature, EKU vaccination, subject CN = name and
/// serialNumber = facility code; at most [`MAX_FACILITY_DAYS`].
pub fn issue_facility(
    issuer: &CaFiles,
    code: &str,
    name: &str,
    days: u32,
    now: OffsetDateTime,
) -> Result<Issued, IssueError> {
    check_days(days, MAX_FACILITY_DAYS)?;
    let dn = facility_dn(code, name)?;
    check_facility_issuer(issuer, code)?;
    let mut p = base_params(dn, days, now, Some(issuer));
    facility_profile(&mut p);
    finish(&p, KeyPair::generate()?, Some(issuer))
}

/// A facility certificate's issuer: the Ministry root (any province) or a provincial CA (its
/// own province only, issue #8 item 16).
fn check_facility_issuer(issuer: &CaFiles, code: &str) -> Result<(), IssueError> {
    let ca = &issuer.cert;
    match &ca.province {
        Some(p) if !code.starts_with(p.as_str()) => {
            Err(IssueError::OutsideProvince { code: code.to_owned(), province: p.clone() })
        }
        None if !ca.self_issued => Err(IssueError::NotAFacilityIssuer),
        _ => Ok(()),
    }
}

/// A facility's own key and certificate signing request (the key never leaves the facility).
pub fn make_csr(code: &str, name: &str) -> Result<(String, String), IssueError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = facility_dn(code, name)?;
    let key = KeyPair::generate()?;
    let csr = p.serialize_request(&key)?;
    strict(csr.der(), "certificate signing request")?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// A facility's certificate signing request for a key pair generated inside a PKCS#11
/// token, non-extractable (SPEC §10): only the CSR leaves the token.
pub fn make_token_csr(code: &str, name: &str, uri: &Pkcs11Uri, kind: TokenKeyType) -> Result<String, IssueError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = facility_dn(code, name)?;
    let key = IssuerKey::Token(TokenKey::generate(uri, kind)?);
    let csr = p.serialize_request(&key)?;
    strict(csr.der(), "certificate signing request")?;
    Ok(csr.pem()?)
}

/// Certifies a facility's CSR with the facility profile. Extensions requested in the CSR are
/// ignored: the profile decides them. The subject must carry a facility code.
pub fn sign_csr(issuer: &CaFiles, csr_path: &Path, days: u32, now: OffsetDateTime) -> Result<Issued, IssueError> {
    check_days(days, MAX_FACILITY_DAYS)?;
    let bytes = read_file(csr_path)?;
    // A P-256 CSR is ~450 bytes of PEM, an RSA-4096 one ~1.7 KB.
    if bytes.len() > MAX_CSR_BYTES {
        return Err(FileError::content(csr_path, format!("larger than {MAX_CSR_BYTES} bytes")).into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| FileError::content(csr_path, "not a PEM file"))?;
    let mut csr = CertificateSigningRequestParams::from_pem(text)
        .map_err(|e| FileError::content(csr_path, format!("not a valid certificate signing request ({e})")))?;
    let dn = std::mem::take(&mut csr.params.distinguished_name);
    csr.params = base_params(dn, days, now, Some(issuer));
    facility_profile(&mut csr.params);
    let cert = csr.signed_by(&issuer.issuer()?)?;
    let parsed = Certificate::from_der_strict(cert.der()).map_err(|e| FileError::content(csr_path, e.to_string()))?;
    let Some(code) = &parsed.facility_code else {
        return Err(FileError::content(csr_path, "subject has no facility code (serialNumber=PPNNN)").into());
    };
    check_facility_issuer(issuer, code)?;
    strict(cert.der(), "certificate")?;
    let cert_pem = cert.pem();
    Ok(Issued { key_pem: None, chain_pem: Some(format!("{cert_pem}{}", issuer.cert_pem)), cert_pem })
}

/// Writes issued files into `dir` as `key.pem` (0600), `cert.pem` and `chain.pem`. Refuses
/// before writing anything if one of them exists.
pub fn write_issued(dir: &Path, issued: &Issued) -> Result<Vec<PathBuf>, FileError> {
    std::fs::create_dir_all(dir).map_err(|source| FileError::Io { path: dir.to_owned(), cause: source })?;
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let chain = dir.join("chain.pem");
    super::keys::ensure_absent(&[&key, &cert, &chain])?;
    let mut written = Vec::new();
    if let Some(k) = &issued.key_pem {
        super::keys::write_new_file(&key, k.as_bytes(), true)?;
        written.push(key);
    }
    super::keys::write_new_file(&cert, issued.cert_pem.as_bytes(), false)?;
    written.push(cert);
    if let Some(c) = &issued.chain_pem {
        super::keys::write_new_file(&chain, c.as_bytes(), false)?;
        written.push(chain);
    }
    Ok(written)
}

/// A trust-list signer: an end-entity certificate of the root with the document-signing EKU
/// (RFC 9336), for signing the published bundle of roots, DSCs and revocations (SPEC §7
/// `GET /api/v1/trust-list`).
pub fn issue_trust_list_signer(issuer: &CaFiles, days: u32, now: OffsetDateTime) -> Result<Issued, IssueError> {
    check_days(days, MAX_FACILITY_DAYS)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Bộ Y tế - Trust List Signer");
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CountryName, "VN");
    let mut p = base_params(dn, days, now, Some(issuer));
    end_entity(&mut p);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(super::policy::EKU_DOCUMENT_SIGNING_ARCS.to_vec())];
    finish(&p, KeyPair::generate()?, Some(issuer))
}
