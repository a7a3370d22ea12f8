//! A test CA, PayPal's message-signing certificate for the sandbox name, and a stand-in
//! HTTPS server on 127.0.0.1 for PayPal's certificate host and API.
//!
//! The signing key is the RSA test key of the PayPal verifier tests, because ring cannot
//! generate RSA keys. The CA and TLS keys are ECDSA keys generated per run.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::Datelike;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use payhook::providers::paypal::{HttpsClient, Resolver};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, date_time_ymd,
};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const LEAF_KEY_PEM: &str = include_str!("../paypal/leaf-key.pem");

/// The name PayPal's sandbox signing certificate is issued to.
pub const SANDBOX_CERT_NAME: &str = "messageverificationcerts.sandbox.paypal.com";

/// Host names the stand-in server's TLS certificate covers and the resolver maps to it. `attacker.example` is served too, so only
/// the certificate URL policy can keep the verifier from fetching it.
const SERVED_HOSTS: &[&str] = &[
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
    "attacker.example",
];

/// A root CA and PayPal's signing key.
pub struct Pki {
    pub root_pem: String,
    root: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    signer: RsaKeyPair,
}

impl Pki {
    pub fn new() -> Self {
        let root_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "payhook providers test root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let root_pem = params.self_signed(&root_key).unwrap().pem();
        let leaf_key =
            KeyPair::from_pkcs8_pem_and_sign_algo(LEAF_KEY_PEM, &PKCS_RSA_SHA256).unwrap();
        let signer = RsaKeyPair::from_pkcs8(leaf_key.serialized_der()).unwrap();
        Pki {
            root_pem,
            root: Issuer::new(params, root_key),
            leaf_key,
            signer,
        }
    }

    /// Returns the signing certificate, issued by the root and valid from last year to
    /// next year.
    pub fn signing_cert_pem(&self) -> String {
        let year = chrono::Utc::now().year();
        let mut params = CertificateParams::new(vec![SANDBOX_CERT_NAME.to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, SANDBOX_CERT_NAME);
        params.not_before = date_time_ymd(year - 1, 1, 1);
        params.not_after = date_time_ymd(year + 1, 12, 31);
        params.signed_by(&self.leaf_key, &self.root).unwrap().pem()
    }

    /// Returns the base64 RSA PKCS#1 v1.5 SHA-256 signature of `message`.
    pub fn sign(&self, message: &str) -> String {
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .unwrap();
        STANDARD.encode(signature)
    }

    /// Returns the signing key's public key as a PKCS#1 `RSAPublicKey`.
    pub fn public_key(&self) -> Vec<u8> {
        self.signer.public_key().as_ref().to_vec()
    }

    fn tls_acceptor(&self) -> TlsAcceptor {
        let key = KeyPair::generate().unwrap();
        let hosts: Vec<String> = SERVED_HOSTS.iter().map(|host| host.to_string()).collect();
        let cert = CertificateParams::new(hosts)
            .unwrap()
            .signed_by(&key, &self.root)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    /// Returns a client that trusts the test root and sends every served host to `address`.
    pub fn client(&self, address: SocketAddr) -> HttpsClient {
        let mut roots = rustls::RootCertStore::empty();
        let (_, der) = x509_parser::pem::parse_x509_pem(self.root_pem.as_bytes()).unwrap();
        roots.add(CertificateDer::from(der.contents)).unwrap();
        let map: HashMap<String, SocketAddr> = SERVED_HOSTS
            .iter()
            .map(|host| (host.to_string(), address))
            .collect();
        HttpsClient::new(roots)
            .unwrap()
            .with_resolver(Resolver::Static(map))
    }
}

/// One request received by the stand-in server.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Bytes,
}

pub type Route = Arc<dyn Fn(&Recorded) -> (StatusCode, String) + Send + Sync>;

/// An HTTPS server on 127.0.0.1 that counts connections and records requests.
pub struct StubServer {
    pub address: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StubServer {
    pub async fn start(pki: &Pki, route: Route) -> StubServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let acceptor = pki.tls_acceptor();
        let (count, log) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, log, route) = (acceptor.clone(), log.clone(), route.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        handle(request, log.clone(), route.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        StubServer {
            address,
            connections,
            requests,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests.iter().map(|r| r.path.clone()).collect()
    }
}

async fn handle(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Recorded>>>,
    route: Route,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let recorded = Recorded {
        path,
        authorization,
        body,
    };
    let (status, text) = route(&recorded);
    log.lock().unwrap().push(recorded);
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}
