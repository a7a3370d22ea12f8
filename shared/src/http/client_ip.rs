//! Source IP of a request: the peer address, or the client named by `X-Forwarded-For` or
//! `Forwarded` when the peer is a configured trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `::1/128`. A bare address is a /32
/// or /128 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

/// A CIDR string that could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid IP network {0:?}: expected an address or address/prefix such as 10.0.0.0/8")]
pub struct InvalidNetwork(pub String);

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNetwork(text.to_string());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| invalid())?,
            None => max,
        };
        if prefix > max {
            return Err(invalid());
        }
        Ok(IpNetwork { address, prefix })
    }
}

impl IpNetwork {
    /// Returns whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, normalize(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) to IPv4 so one rule covers both.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Returns the client address: the peer, unless the peer is a trusted proxy, in which case
/// the right-most untrusted address of `X-Forwarded-For` (or `Forwarded: for=`) is used.
pub fn client_ip(peer: SocketAddr, headers: &http::HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let peer_ip = normalize(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer_ip) {
        return peer_ip;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { continue };
        chain.extend(
            value
                .split(',')
                .filter_map(|part| part.trim().parse::<IpAddr>().ok()),
        );
    }
    if chain.is_empty() {
        for value in headers.get_all("forwarded") {
            let Ok(value) = value.to_str() else { continue };
            chain.extend(value.split([',', ';']).filter_map(forwarded_for));
        }
    }
    chain
        .into_iter()
        .rev()
        .map(normalize)
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer_ip)
}

fn forwarded_for(part: &str) -> Option<IpAddr> {
    let (key, value) = part.trim().split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("for") {
        return None;
    }
    let value = value.trim().trim_matches('"');
    let value = value
        .strip_prefix('[')
        .map_or(value, |v| v.split(']').next().unwrap_or(v));
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    value
        .rsplit_once(':')
        .and_then(|(host, _port)| host.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn untrusted_peer_cannot_spoof_forwarded_for() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();

        let ip = client_ip(peer, &headers(&[("x-forwarded-for", "1.2.3.4")]), &trusted);

        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let map = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.9.9.9")]);

        let ip = client_ip(peer, &map, &trusted);

        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forwarded_header_is_read_from_trusted_proxy() {
        let trusted: Vec<IpNetwork> = vec!["127.0.0.1".parse().unwrap()];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let map = headers(&[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")]);

        let ip = client_ip(peer, &map, &trusted);

        assert_eq!(ip, "2001:db8::7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn network_parsing_rejects_bad_prefix() {
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("nonsense".parse::<IpNetwork>().is_err());
        assert!("::1/128".parse::<IpNetwork>().is_ok());
    }
}
