//! Test PKI and stand-in HTTPS servers on 127.0.0.1.
//!
//! `leaf-key.pem` is a 2048-bit RSA key made for these tests only (ring cannot generate RSA
//! keys). The CA and TLS keys are ECDSA keys generated per run.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use payhook::providers::paypal::{HttpsClient, Resolver, TrustStore};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, date_time_ymd,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const LEAF_KEY_PEM: &str = include_str!("leaf-key.pem");

/// Host names the stand-in TLS certificate covers, so TLS is never why a fetch fails.
pub const SERVED_HOSTS: &[&str] = &[
    "api.paypal.com",
    "api-m.paypal.com",
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
    "api.paypal.com.attacker.example",
    "attacker.example",
];

/// A root CA, an intermediate CA and the RSA key that signs webhook messages.
pub struct Pki {
    pub root_pem: String,
    root: Issuer<'static, KeyPair>,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    signer: RsaKeyPair,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Pki {
    pub fn new() -> Self {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("payhook test root");
        let root_pem = root_params.self_signed(&root_key).unwrap().pem();
        let root = Issuer::new(root_params, root_key);

        let intermediate_key = KeyPair::generate().unwrap();
        let intermediate_params = ca_params("payhook test intermediate");
        let intermediate_pem = intermediate_params
            .signed_by(&intermediate_key, &root)
            .unwrap()
            .pem();
        let intermediate = Issuer::new(intermediate_params, intermediate_key);

        let leaf_key =
            KeyPair::from_pkcs8_pem_and_sign_algo(LEAF_KEY_PEM, &PKCS_RSA_SHA256).unwrap();
        let signer = RsaKeyPair::from_pkcs8(leaf_key.serialized_der()).unwrap();
        Pki {
            root_pem,
            root,
            intermediate_pem,
            intermediate,
            leaf_key,
            signer,
        }
    }

    pub fn trust_store(&self) -> TrustStore {
        TrustStore::from_pem(self.root_pem.as_bytes()).unwrap()
    }

    fn leaf_params(name: &str, from: (i32, u8), until: (i32, u8)) -> CertificateParams {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(from.0, from.1, 1);
        params.not_after = date_time_ymd(until.0, until.1, 1);
        params
    }

    /// Returns a leaf for `name` valid from/until the first of the given (year, month),
    /// followed by the intermediate, as PayPal serves its chain.
    pub fn chain_pem(&self, name: &str, from: (i32, u8), until: (i32, u8)) -> String {
        let leaf = Self::leaf_params(name, from, until)
            .signed_by(&self.leaf_key, &self.intermediate)
            .unwrap();
        format!("{}{}", leaf.pem(), self.intermediate_pem)
    }

    /// Returns a leaf for `name` that signs itself.
    pub fn self_signed_pem(&self, name: &str) -> String {
        Self::leaf_params(name, (2024, 1), (2025, 1))
            .self_signed(&self.leaf_key)
            .unwrap()
            .pem()
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

/// One request received by a stand-in server.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Bytes,
}

pub type Route = Arc<dyn Fn(&Recorded) -> (StatusCode, String) + Send + Sync>;

/// An HTTPS server on 127.0.0.1 that counts connections and records requests.
pub struct StubServer {
    pub address: SocketAddr,
    connections: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
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

    /// Serves `body` with status 200 for every request.
    pub async fn serving(pki: &Pki, body: String) -> StubServer {
        StubServer::start(pki, Arc::new(move |_| (StatusCode::OK, body.clone()))).await
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn handle(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Recorded>>>,
    route: Route,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let recorded = Recorded {
        method,
        path,
        authorization,
        body,
    };
    let (status, text) = route(&recorded);
    log.lock().unwrap().push(recorded);
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    if status.is_redirection() {
        response.headers_mut().insert(
            http::header::LOCATION,
            "https://api.sandbox.paypal.com/v1/notifications/certs/OTHER"
                .parse()
                .unwrap(),
        );
    }
    Ok(response)
}

/// Returns an address on 127.0.0.1 where nothing listens.
pub async fn closed_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
