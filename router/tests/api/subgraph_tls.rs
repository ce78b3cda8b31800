//! The router in front of an `https://` subgraph: TLS with a CA the router is
//! told to trust, the router's secret delivered. (HTTP/2 by ALPN and mTLS are
//! proven against hyper servers in `router/src/subgraphs/pool/tests.rs`.)

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{SupergraphFile, TempDir, compose, spawn_router, spawn_subgraph};

struct Query;

#[Object]
impl Query {
    async fn greeting(&self) -> &'static str {
        "hello over TLS"
    }
}

/// A CA (its PEM written to `dir/ca.pem`) and a TLS config for 127.0.0.1 signed by it.
fn server_tls(dir: &std::path::Path, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Terminates TLS on a port of its own and passes the bytes on to `plain`
/// (an HTTP/1.1 subgraph). Returns the https URL
/// and the protocols ALPN agreed on, one per connection.
async fn tls_front(config: Arc<rustls::ServerConfig>, plain: &str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/graphql", listener.local_addr().unwrap());
    let backend = plain.trim_start_matches("http://").trim_end_matches("/graphql").to_owned();
    let agreed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = agreed.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (config, backend, log) = (config.clone(), backend.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else { return };
                let alpn = tls.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
                log.lock().unwrap().push(alpn.unwrap_or_default());
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (url, agreed)
}

#[tokio::test]
async fn a_query_reaches_an_https_subgraph_trusted_through_subgraph_ca_file() {
    let dir = TempDir(std::env::temp_dir().join(format!("taskgraph-tls-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let subgraph = spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).finish()).await;
    let (url, agreed) = tls_front(server_tls(&dir.0, &[b"http/1.1"]), &subgraph.url).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeter", subgraph.sdl.clone(), url)]));
    let ca = dir.0.join("ca.pem").display().to_string();
    let router = spawn_router(supergraph.path.clone(), &[("SUBGRAPH_CA_FILE", ca)]).await;

    let answer: Value = router.graphql(None, "{ greeting }", json!({})).await;

    assert_eq!(answer, json!({ "data": { "greeting": "hello over TLS" } }));
    assert_eq!(agreed.lock().unwrap().clone(), vec!["http/1.1".to_owned()]);
    let headers = subgraph.headers();
    assert_eq!(headers[0].get("x-taskgraph-router-secret").map(String::as_str), Some(kit::testing::ROUTER_SECRET));
}

#[tokio::test]
async fn a_router_not_told_of_the_subgraphs_authority_refuses_its_certificate() {
    let dir = TempDir(std::env::temp_dir().join(format!("taskgraph-tls-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let subgraph = spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).finish()).await;
    let (url, _) = tls_front(server_tls(&dir.0, &[b"http/1.1"]), &subgraph.url).await;
    let supergraph = SupergraphFile::new(&compose(&[("greeter", subgraph.sdl.clone(), url)]));
    let router = spawn_router(supergraph.path.clone(), &[]).await;

    let answer: Value = router.graphql(None, "{ greeting }", json!({})).await;

    assert_eq!(answer["data"], Value::Null);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "SUBGRAPH_UNAVAILABLE");
    assert!(subgraph.requests().is_empty(), "nothing reached the subgraph");
}
