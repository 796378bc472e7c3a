//! The exceptions to "no internal targets": [`AllowedInternal`], parsed once from
//! `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS` (comma-separated host names, IP addresses and CIDRs), and the one
//! decision every outgoing connection asks, [`AllowedInternal::permits`]. Pure; no I/O.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ip::is_internal;

/// Host names and networks that may be reached although they are internal. Empty by default: every internal
/// address is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedInternal {
    /// Lower-case host names without a trailing dot: connections to these names may go to any address they
    /// resolve to.
    pub hosts: Vec<String>,
    /// Networks (a bare address is its /32 or /128) whose internal addresses may be reached, by any name.
    pub cidrs: Vec<IpNet>,
}

impl AllowedInternal {
    /// Parse `mail.corp.example, 10.0.0.0/8, 127.0.0.1, ::1, [fd00::1]`. An empty string allows nothing.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                out.cidrs.push(IpNet::from(canonical(ip)));
            } else if let Ok(net) = bare.parse::<IpNet>() {
                out.cidrs.push(net.trunc());
            } else if let Some(host) = host_name(entry) {
                out.hosts.push(host);
            } else {
                return Err(format!("{entry:?} is neither a host name, an IP address nor a CIDR"));
            }
        }
        Ok(out)
    }

    /// Whether a connection to `ip`, reached through the host name `host` (`None` for an IP literal), may be made.
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        if !is_internal(ip) {
            return true;
        }
        if let Some(host) = host.and_then(host_name)
            && self.hosts.contains(&host)
        {
            return true;
        }
        let ip = canonical(ip);
        self.cidrs.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.cidrs.is_empty()
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are (`::ffff:127.0.0.1` is 127.0.0.1).
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// A host name as compared: lower case, no trailing dot; `None` when it is not one.
fn host_name(raw: &str) -> Option<String> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nothing_internal_is_permitted_by_default() {
        let none = AllowedInternal::default();
        for target in ["127.0.0.1", "::1", "10.1.2.3", "169.254.169.254", "0.0.0.0", "::ffff:127.0.0.1", "fd00::1"] {
            assert!(!none.permits(None, ip(target)), "{target}");
            assert!(!none.permits(Some("localhost"), ip(target)), "{target} by name");
        }
        assert!(none.permits(None, ip("93.184.216.34")), "public addresses need no exception");
        assert!(none.permits(Some("example.com"), ip("2606:2800:220:1:248:1893:25c8:1946")));
    }

    #[test]
    fn parsing_hosts_addresses_and_networks() {
        let a = AllowedInternal::parse(" Mail.Corp.Example. , 10.0.0.0/8,127.0.0.1, ::1 ,[fd00::5], 192.168.1.7/24,")
            .unwrap();
        assert_eq!(a.hosts, vec!["mail.corp.example"]);
        let cidrs: Vec<String> = a.cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::5/128", "192.168.1.0/24"]);
        assert!(AllowedInternal::parse("").unwrap().is_empty());
        for bad in ["http://x/", "10.0.0.0/33", "a b", "user@host", "::1/200", "a..b"] {
            assert!(AllowedInternal::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn exceptions_apply_to_the_resolved_address_or_the_name_asked_for() {
        let a = AllowedInternal::parse("mail.corp.example,127.0.0.0/8,::1").unwrap();
        assert!(a.permits(None, ip("127.0.0.1")));
        assert!(a.permits(None, ip("127.8.9.10")));
        assert!(a.permits(None, ip("::ffff:127.0.0.1")), "a mapped address is the IPv4 address");
        assert!(a.permits(None, ip("::1")));
        assert!(!a.permits(None, ip("169.254.169.254")));
        assert!(!a.permits(None, ip("0.0.0.0")));
        assert!(!a.permits(Some("evil.example"), ip("10.0.0.1")), "a name resolving inside is still refused");
        assert!(a.permits(Some("MAIL.corp.example."), ip("10.0.0.1")), "a listed name may resolve inside");
        assert!(!a.permits(Some("corp.example"), ip("10.0.0.1")), "only the name itself, not its parent");
        assert!(!a.permits(Some("x.mail.corp.example"), ip("10.0.0.1")), "nor its subdomains");
    }
}
