//! Where clients may go through llmtap: the destination policy.
//!
//! Owns: the rule that a CONNECT or absolute-form request to loopback, link-local,
//! unspecified or llmtap's own listen and admin addresses is refused (403, counted), unless
//! the operator opened it with `--allow-destination`. Host names are checked twice: by name
//! at the request (`localhost`), and by every address they resolve to at dial time, so a
//! name that resolves into a refused network (DNS rebinding) is refused too. Targets the
//! operator mapped with `--resolve` are the operator's choice and are not subject to it.
//!
//! The defaults follow what Envoy's and Squid's hardening guides ask of a forward proxy
//! (Squid's `to_localhost` and `to_linklocal` ACLs; cloud metadata at 169.254.169.254).
//! Does not own: authentication (`config::auth`), which hosts are decrypted (`handler`).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Why a destination is refused. Label values of `llmtap_destinations_refused_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Refusal {
    /// 127.0.0.0/8, ::1, or a name such as `localhost`.
    Loopback,
    /// 169.254.0.0/16, fe80::/10 (cloud metadata services live here).
    LinkLocal,
    /// 0.0.0.0, :: (which reach this host).
    Unspecified,
    /// llmtap's own proxy or admin address.
    OwnAddress,
}

crate::vocab::label!(Refusal);

/// One `--allow-destination` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// An IP network (a bare IP is a /32 or /128), any port or one port.
    Net(IpNet, Option<u16>),
    /// A host name (lowercase, no trailing dot), any port or one port.
    Host(String, Option<u16>),
}

impl Allow {
    /// Parses `CIDR`, `IP`, `HOST`, each optionally followed by `:PORT` (IPv6 in brackets
    /// when a port follows: `[::1]:8443`).
    pub fn parse(value: &str) -> Result<Allow, String> {
        let value = value.trim();
        let (target, port) = split_port(value)?;
        if target.is_empty() {
            return Err("empty destination".to_owned());
        }
        if let Ok(net) = target.parse::<IpNet>() {
            return Ok(Allow::Net(net.trunc(), port));
        }
        if let Ok(ip) = target.parse::<IpAddr>() {
            return Ok(Allow::Net(IpNet::from(canonical(ip)), port));
        }
        let host = target.trim_end_matches('.').to_ascii_lowercase();
        let valid = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !valid {
            return Err(format!("'{value}' is not a CIDR, IP or host name"));
        }
        Ok(Allow::Host(host, port))
    }
}

/// `HOST:PORT`, `[V6]:PORT`, `V6`, `CIDR` → (target, port).
fn split_port(value: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map(Some)
            .map_err(|_| format!("'{p}' is not a port"))
    };
    if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{value}' has no closing ']'"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((ip, port(p)?)),
            None if after.is_empty() => Ok((ip, None)),
            None => Err(format!("unexpected '{after}' after ']'")),
        };
    }
    match value.rsplit_once(':') {
        // More than one colon and no brackets: an IPv6 address or network, no port.
        Some((head, _)) if head.contains(':') => Ok((value, None)),
        Some((head, p)) => Ok((head, port(p)?)),
        None => Ok((value, None)),
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The policy: built once from the configuration, read by every request and dial.
#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    allow: Vec<Allow>,
    /// llmtap's own listening sockets, with a wildcard IP expanded to every local address.
    own: Vec<SocketAddr>,
}

impl DestinationPolicy {
    /// `own`: the proxy and admin addresses; a wildcard (`0.0.0.0:8080`) is expanded to
    /// `local_ips` (the machine's interface addresses) on that port.
    pub fn new(allow: Vec<Allow>, own: &[SocketAddr], local_ips: &[IpAddr]) -> Self {
        let mut addrs = Vec::new();
        for addr in own {
            if addr.ip().is_unspecified() {
                addrs.extend(local_ips.iter().map(|ip| SocketAddr::new(*ip, addr.port())));
            }
            addrs.push(*addr);
        }
        DestinationPolicy { allow, own: addrs }
    }

    /// Checks a request target: an IP literal by its address, a name by its name
    /// (`localhost`, `*.localhost` are loopback by RFC 6761 §6.3). Resolved addresses of
    /// other names are checked at dial time with [`DestinationPolicy::check_resolved`].
    pub fn check(&self, host: &str, port: u16) -> Result<(), Refusal> {
        let host = crate::wire::normalize_host(host);
        // A fully qualified name (`localhost.`) is the same name.
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.check_addr(None, SocketAddr::new(ip, port));
        }
        if host == "localhost" || host.ends_with(".localhost") {
            return match self.allowed_name(host, port) {
                true => Ok(()),
                false => Err(Refusal::Loopback),
            };
        }
        Ok(())
    }

    /// Checks one address a name resolved to (or an IP literal, `name` = `None`).
    pub fn check_resolved(&self, name: &str, addr: SocketAddr) -> Result<(), Refusal> {
        self.check_addr(Some(name), addr)
    }

    fn check_addr(&self, name: Option<&str>, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        let port = addr.port();
        let refusal = if self
            .own
            .iter()
            .any(|own| canonical(own.ip()) == ip && own.port() == port)
        {
            Some(Refusal::OwnAddress)
        } else if ip.is_loopback() {
            Some(Refusal::Loopback)
        } else if ip.is_unspecified() {
            Some(Refusal::Unspecified)
        } else if is_link_local(ip) {
            Some(Refusal::LinkLocal)
        } else {
            None
        };
        let Some(refusal) = refusal else {
            return Ok(());
        };
        let allowed = self.allow.iter().any(|rule| match rule {
            Allow::Net(net, p) => net.contains(&ip) && p.is_none_or(|p| p == port),
            Allow::Host(h, p) => {
                name.is_some_and(|n| n.trim_end_matches('.').eq_ignore_ascii_case(h))
                    && p.is_none_or(|p| p == port)
            }
        });
        if allowed { Ok(()) } else { Err(refusal) }
    }

    fn allowed_name(&self, host: &str, port: u16) -> bool {
        self.allow.iter().any(|rule| match rule {
            Allow::Host(h, p) => h == host && p.is_none_or(|p| p == port),
            Allow::Net(..) => false,
        })
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The machine's interface addresses (to expand a wildcard listen address); empty when
/// they cannot be read.
pub fn local_ips() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|ifa| {
            let addr = ifa.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> DestinationPolicy {
        let allow = allow
            .iter()
            .map(|a| Allow::parse(a).expect("rule"))
            .collect();
        let own: Vec<SocketAddr> = vec!["0.0.0.0:8080".parse().expect("a")];
        DestinationPolicy::new(allow, &own, &["10.1.2.3".parse().expect("ip")])
    }

    #[test]
    fn loopback_link_local_unspecified_and_own_addresses_are_refused_by_default() {
        let p = policy(&[]);
        for (host, port, want) in [
            ("127.0.0.1", 9464, Refusal::Loopback),
            ("127.8.9.10", 80, Refusal::Loopback),
            ("[::1]", 443, Refusal::Loopback),
            ("::ffff:127.0.0.1", 443, Refusal::Loopback),
            ("localhost", 80, Refusal::Loopback),
            ("api.localhost.", 80, Refusal::Loopback),
            ("169.254.169.254", 80, Refusal::LinkLocal),
            ("fe80::1", 80, Refusal::LinkLocal),
            ("0.0.0.0", 9464, Refusal::Unspecified),
            ("::", 9464, Refusal::Unspecified),
            ("10.1.2.3", 8080, Refusal::OwnAddress),
            ("0.0.0.0", 8080, Refusal::OwnAddress),
        ] {
            assert_eq!(p.check(host, port), Err(want), "{host}:{port}");
        }
        for (host, port) in [
            ("api.anthropic.com", 443),
            ("10.1.2.3", 443),
            ("93.184.216.34", 443),
        ] {
            assert_eq!(p.check(host, port), Ok(()), "{host}:{port}");
        }
    }

    #[test]
    fn names_are_checked_by_what_they_resolve_to() {
        let p = policy(&[]);
        let lo: SocketAddr = "127.0.0.1:443".parse().expect("a");
        assert_eq!(
            p.check_resolved("rebind.example", lo),
            Err(Refusal::Loopback)
        );
        let p = policy(&["rebind.example"]);
        assert_eq!(p.check_resolved("rebind.example", lo), Ok(()));
    }

    #[test]
    fn allow_rules_open_one_network_host_or_port() {
        let p = policy(&[
            "127.0.0.1:8443",
            "169.254.0.0/16",
            "[::1]",
            "localhost:3000",
        ]);
        assert_eq!(p.check("127.0.0.1", 8443), Ok(()));
        assert_eq!(p.check("127.0.0.1", 8444), Err(Refusal::Loopback));
        assert_eq!(p.check("169.254.169.254", 80), Ok(()));
        assert_eq!(p.check("::1", 1), Ok(()));
        assert_eq!(p.check("localhost", 3000), Ok(()));
        assert_eq!(p.check("localhost", 3001), Err(Refusal::Loopback));
    }

    #[test]
    fn allow_rules_are_validated() {
        assert_eq!(
            Allow::parse("10.0.0.0/8").expect("net"),
            Allow::Net("10.0.0.0/8".parse().expect("n"), None)
        );
        assert_eq!(
            Allow::parse("[fe80::1]:80").expect("v6"),
            Allow::Net("fe80::1/128".parse().expect("n"), Some(80))
        );
        assert_eq!(
            Allow::parse("Metadata.Internal.:80").expect("host"),
            Allow::Host("metadata.internal".into(), Some(80))
        );
        for bad in ["", "host:port", "a b", "[::1", "10.0.0.0/99"] {
            assert!(Allow::parse(bad).is_err(), "{bad}");
        }
    }
}
