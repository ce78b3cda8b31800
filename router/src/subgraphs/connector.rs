//! How the router reaches subgraphs: which HTTP version it speaks, and TLS
//! for `https://` subgraphs (rustls with the ring provider; Mozilla's roots,
//! plus `SUBGRAPH_CA_FILE`; a client certificate for mTLS).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{Protocol, TlsFiles};

/// Opens the TLS side of subgraph connections; shared by every subgraph's pool.
pub struct Connector {
    protocol: Protocol,
    tls: TlsConnector,
}

impl Connector {
    /// Reads the certificate files (a missing or unreadable one is an error now, not at the first fetch).
    pub fn new(protocol: Protocol, files: &TlsFiles) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &files.ca {
            let pem = read(path, "SUBGRAPH_CA_FILE")?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| anyhow::anyhow!("SUBGRAPH_CA_FILE {}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| anyhow::anyhow!("SUBGRAPH_CA_FILE {}: {e}", path.display()))?;
                added += 1;
            }
            anyhow::ensure!(added > 0, "SUBGRAPH_CA_FILE {} holds no PEM certificate", path.display());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
            .with_root_certificates(roots);
        let mut config = match &files.client {
            None => builder.with_no_client_auth(),
            Some((cert_path, key_path)) => {
                let pem = read(cert_path, "SUBGRAPH_CLIENT_CERT_FILE")?;
                let chain = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("SUBGRAPH_CLIENT_CERT_FILE {}: {e}", cert_path.display()))?;
                anyhow::ensure!(
                    !chain.is_empty(),
                    "SUBGRAPH_CLIENT_CERT_FILE {} holds no certificate",
                    cert_path.display()
                );
                let key = PrivateKeyDer::from_pem_slice(&read(key_path, "SUBGRAPH_CLIENT_KEY_FILE")?)
                    .map_err(|e| anyhow::anyhow!("SUBGRAPH_CLIENT_KEY_FILE {}: {e}", key_path.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| anyhow::anyhow!("the subgraph client certificate and key do not match: {e}"))?
            }
        };
        config.alpn_protocols = match protocol {
            Protocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Protocol::Http1 => vec![b"http/1.1".to_vec()],
            Protocol::Http2 => vec![b"h2".to_vec()],
        };
        Ok(Self { protocol, tls: TlsConnector::from(Arc::new(config)) })
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The TLS handshake with `host` over `tcp`, the certificate checked against `host`.
    pub async fn tls(&self, host: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a TLS server name")))?;
        let stream = self.tls.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

fn read(path: &Path, var: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{var} {}: {e}", path.display()))
}

/// A connection to a subgraph, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether TLS agreed on HTTP/2 (ALPN `h2`).
    pub fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
