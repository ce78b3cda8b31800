//! Who the client is, for per-IP limits: the TCP peer, unless that peer is a
//! proxy we trust, in which case `X-Forwarded-For` is read from the right, past
//! our own proxies. A client cannot spoof its way to a fresh bucket: without a
//! trusted peer the header is ignored, and entries it prepends are never reached.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

use crate::config::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address as far as it can be known.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Hops are appended left to right; walk back from the nearest one.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The bucket key of an address: IPv6 clients are keyed by their /64, since
/// one host is routinely given a whole /64 and could rotate through it.
pub fn bucket_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("203.0.113.7"), &forwarded(&["1.1.1.1"])), ip("203.0.113.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies(vec![IpNet::parse("10.0.0.0/8").unwrap()]);
        // A client-supplied (spoofed) entry sits left of the real one and is never reached.
        let headers = forwarded(&["6.6.6.6, 198.51.100.4", "10.0.0.3"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &headers), ip("198.51.100.4"));
        // No header: the proxy itself.
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        // Garbage stops the walk at the last good hop.
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &forwarded(&["junk, 10.0.0.9"])), ip("10.0.0.9"));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(bucket_key(ip("2001:db8:1:2:aaaa::1")), bucket_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(bucket_key(ip("2001:db8:1:2::1")), bucket_key(ip("2001:db8:1:3::1")));
        assert_eq!(bucket_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
