//! `SERVICE healthcheck [live|ready]`: the service asks itself over HTTP.
//!
//! Container images ship no shell and no curl (distroless), so Docker's
//! `HEALTHCHECK` and compose's `healthcheck` run the binary instead. A plain
//! blocking HTTP/1.1 GET on std's `TcpStream`: no runtime, no TLS, no client
//! crate, nothing to go wrong before the question is asked.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::config::HttpSettings;

/// How long one probe may take, connecting and reading included; well inside
/// the 5 s a compose or Kubernetes probe gives it.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Most of the answer read: health bodies are a few hundred bytes.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Which health route to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/health/live`: the process answers.
    Live,
    /// `/health/ready`: and its required dependencies are up.
    Ready,
}

impl Probe {
    /// `live` or `ready`; none given is `ready` (what `depends_on: service_healthy` needs).
    pub fn parse(argument: Option<&str>) -> Option<Self> {
        match argument {
            None | Some("ready") => Some(Self::Ready),
            Some("live") => Some(Self::Live),
            Some(_) => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Live => "/health/live",
            Self::Ready => "/health/ready",
        }
    }
}

/// Where the service's public listener can be reached from inside its own
/// container: a wildcard `HOST` is reached on loopback.
pub fn own_address(http: &HttpSettings) -> SocketAddr {
    let host = match http.host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(host, http.port)
}

/// Why a probe did not pass.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {address}: {source}")]
    Unreachable { address: SocketAddr, source: std::io::Error },
    #[error("{address} answered no HTTP status line")]
    Malformed { address: SocketAddr },
    #[error("{address}{path} answered {status}: {body}")]
    NotOk { address: SocketAddr, path: &'static str, status: u16, body: String },
}

/// GETs `probe`'s route at `address`; the body of a 200, else why not.
pub fn check(address: SocketAddr, probe: Probe, timeout: Duration) -> Result<String, ProbeError> {
    let unreachable = |source| ProbeError::Unreachable { address, source };
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(unreachable)?;
    let path = probe.path();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n");
    stream.set_write_timeout(Some(remaining(deadline))).map_err(unreachable)?;
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while response.len() < MAX_RESPONSE_BYTES {
        stream.set_read_timeout(Some(remaining(deadline))).map_err(unreachable)?;
        match stream.read(&mut chunk).map_err(unreachable)? {
            0 => break,
            n => response.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = status_code(&text).ok_or(ProbeError::Malformed { address })?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body).trim().to_owned();
    if status == 200 { Ok(body) } else { Err(ProbeError::NotOk { address, path, status, body }) }
}

/// Never zero: a zero timeout means "none" to std.
fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut parts = line.split(' ');
    parts.next().filter(|version| version.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A one-shot server that answers `response` to whatever it is sent.
    fn answering(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            stream.write_all(response.as_bytes()).unwrap();
        });
        address
    }

    #[test]
    fn a_200_passes_with_its_body() {
        let address = answering("HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n{\"status\":\"live\"}");
        assert_eq!(check(address, Probe::Live, TIMEOUT).unwrap(), "{\"status\":\"live\"}");
    }

    #[test]
    fn a_503_fails_and_says_what_it_answered() {
        let address = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"unavailable\"}");
        let error = check(address, Probe::Ready, TIMEOUT).unwrap_err().to_string();
        assert!(error.contains("/health/ready answered 503") && error.contains("unavailable"), "{error}");
    }

    #[test]
    fn nothing_listening_fails() {
        let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        // The listener is dropped: the port refuses.
        assert!(matches!(check(address, Probe::Live, TIMEOUT), Err(ProbeError::Unreachable { .. })));
    }

    #[test]
    fn a_server_that_never_answers_fails_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let started = Instant::now();
        let outcome = check(address, Probe::Live, Duration::from_millis(200));
        assert!(matches!(outcome, Err(ProbeError::Unreachable { .. })), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn garbage_is_not_a_pass() {
        let address = answering("SSH-2.0-OpenSSH\r\n");
        assert!(matches!(check(address, Probe::Live, TIMEOUT), Err(ProbeError::Malformed { .. })));
    }

    #[test]
    fn wildcard_hosts_are_asked_on_loopback() {
        let mut env = crate::Env::from_pairs([("HOST", "0.0.0.0"), ("PORT", "4002")]);
        let http = HttpSettings::from_env(&mut env, 4002);
        assert_eq!(own_address(&http), "127.0.0.1:4002".parse().unwrap());
        let mut env = crate::Env::from_pairs([("HOST", "::"), ("PORT", "4002")]);
        assert_eq!(own_address(&HttpSettings::from_env(&mut env, 4002)), "[::1]:4002".parse().unwrap());
    }

    #[test]
    fn only_live_and_ready_are_probes() {
        assert_eq!(Probe::parse(None), Some(Probe::Ready));
        assert_eq!(Probe::parse(Some("live")), Some(Probe::Live));
        assert_eq!(Probe::parse(Some("startup")), None);
    }
}
