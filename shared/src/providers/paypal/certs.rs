//! PayPal signing certificates: parsing the served PEM chain, checking it against a trust
//! store, the validity period and the expected name, and returning the leaf's public key.

use chrono::{DateTime, Utc};
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

use crate::providers::ConfigError;

/// Maximum number of issuers walked from the leaf to a trust anchor.
const MAX_CHAIN_DEPTH: usize = 6;

/// CA certificates a PayPal signing certificate must chain to.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
}

impl TrustStore {
    /// Reads one or more PEM `CERTIFICATE` blocks.
    pub fn from_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("paypal.trust_store", reason);
        let anchors = pem_certificates(pem).map_err(|e| invalid(e.to_string()))?;
        if anchors.is_empty() {
            return Err(invalid("no PEM CERTIFICATE block found".to_string()));
        }
        Ok(TrustStore { anchors })
    }

    /// Trusts no certificate, so every chain ends untrusted; used by the fuzz targets.
    pub(crate) fn empty() -> Self {
        TrustStore {
            anchors: Vec::new(),
        }
    }

    /// Uses the operating system's root certificates.
    pub fn system() -> Result<Self, ConfigError> {
        let loaded = rustls_native_certs::load_native_certs();
        let anchors: Vec<Vec<u8>> = loaded.certs.iter().map(|der| der.to_vec()).collect();
        if anchors.is_empty() {
            return Err(ConfigError::invalid(
                "paypal.trust_store",
                "no system root certificates could be loaded",
            ));
        }
        Ok(TrustStore { anchors })
    }
}

/// Reasons a served certificate is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertError {
    #[error("certificate PEM is invalid: {0}")]
    InvalidPem(String),
    #[error("certificate response contains no certificate")]
    Empty,
    #[error("certificate {0} is not valid at the current time")]
    NotValidNow(String),
    #[error("certificate is issued to none of the expected names {0:?}")]
    WrongName(Vec<String>),
    #[error("certificate does not chain to a trusted CA: {0}")]
    Untrusted(String),
}

/// The public key of a validated leaf certificate and how long it may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeafKey {
    /// The subjectPublicKey bytes (for RSA, the PKCS#1 `RSAPublicKey`).
    pub(crate) public_key: Vec<u8>,
    pub(crate) not_before: DateTime<Utc>,
    pub(crate) not_after: DateTime<Utc>,
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let mut certificates = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| CertError::InvalidPem(e.to_string()))?;
        if block.label == "CERTIFICATE" {
            certificates.push(block.contents);
        }
    }
    Ok(certificates)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    X509Certificate::from_der(der)
        .map(|(_, certificate)| certificate)
        .map_err(|e| CertError::InvalidPem(e.to_string()))
}

fn check_valid_at(certificate: &X509Certificate<'_>, now: ASN1Time) -> Result<(), CertError> {
    if certificate.validity().is_valid_at(now) {
        Ok(())
    } else {
        Err(CertError::NotValidNow(certificate.subject().to_string()))
    }
}

fn has_name(certificate: &X509Certificate<'_>, names: &[String]) -> bool {
    let matches = |candidate: &str| {
        names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(candidate))
    };
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        let dns_names = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(*dns),
                _ => None,
            });
        if dns_names.into_iter().any(matches) {
            return true;
        }
    }
    certificate
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(matches)
}

/// Finds the signer of `child`: a trust anchor (`Ok(None)`: chain complete) or an
/// intermediate from the served bundle (`Ok(Some(index))`).
fn find_issuer(
    child: &X509Certificate<'_>,
    anchors: &[X509Certificate<'_>],
    bundle: &[X509Certificate<'_>],
    now: ASN1Time,
) -> Result<Option<usize>, CertError> {
    let signed_by = |issuer: &X509Certificate<'_>| {
        issuer.subject() == child.issuer()
            && child.verify_signature(Some(issuer.public_key())).is_ok()
    };
    if anchors
        .iter()
        .any(|anchor| signed_by(anchor) && anchor.validity().is_valid_at(now))
    {
        return Ok(None);
    }
    let index = bundle
        .iter()
        .position(|candidate| candidate.is_ca() && signed_by(candidate))
        .ok_or_else(|| {
            CertError::Untrusted(format!("no trusted issuer for {}", child.subject()))
        })?;
    check_valid_at(&bundle[index], now)?;
    Ok(Some(index))
}

/// Validates the served PEM (leaf first, then any intermediates) at `now` and returns the
/// leaf's public key.
pub(crate) fn validate_chain(
    pem: &[u8],
    trust: &TrustStore,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<LeafKey, CertError> {
    let time = ASN1Time::from_timestamp(now.timestamp())
        .map_err(|e| CertError::Untrusted(format!("invalid clock value: {e}")))?;
    let ders = pem_certificates(pem)?;
    let certificates = ders
        .iter()
        .map(|der| parse(der))
        .collect::<Result<Vec<_>, _>>()?;
    let anchors: Vec<X509Certificate<'_>> = trust
        .anchors
        .iter()
        .filter_map(|der| parse(der).ok())
        .collect();
    let (leaf, bundle) = certificates.split_first().ok_or(CertError::Empty)?;

    check_valid_at(leaf, time)?;
    if !has_name(leaf, names) {
        return Err(CertError::WrongName(names.to_vec()));
    }
    let mut current = leaf;
    for _ in 0..MAX_CHAIN_DEPTH {
        match find_issuer(current, &anchors, bundle, time)? {
            None => return Ok(leaf_key(leaf)),
            Some(index) => current = &bundle[index],
        }
    }
    Err(CertError::Untrusted(
        "certificate chain is too long".to_string(),
    ))
}

fn leaf_key(leaf: &X509Certificate<'_>) -> LeafKey {
    let validity = leaf.validity();
    let time = |t: ASN1Time| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default();
    LeafKey {
        public_key: leaf.public_key().subject_public_key.data.to_vec(),
        not_before: time(validity.not_before),
        not_after: time(validity.not_after),
    }
}
