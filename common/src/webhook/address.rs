//! Where a webhook may be sent: `https` in production (`http` too in development), never
//! to a private, loopback, link-local or otherwise special address unless
//! `AMP_WEBHOOK_ALLOW_PRIVATE`. The address check runs on every resolved address at each
//! connection (a resolver for the HTTP client), so a DNS answer that changes after the
//! URL was checked (rebinding) cannot get past it; literal IPs are checked before sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Url;

/// Checks a webhook URL as a client sends it.
pub fn check_url(text: &str, production: bool) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if !production => {}
        "http" => return Err("must be https in production".into()),
        other => return Err(format!("`{other}` is not http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (put them in the endpoint's own checks)".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

/// Refuses a destination this deployment may not reach (unless `allow_private`): a literal
/// private address, or a name that resolves only to private ones (deliveries check every
/// address again when they connect; a name that does not resolve yet passes).
pub async fn check_destination(url: &Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let private = |ip: IpAddr| format!("{ip} is a private, loopback or link-local address");
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !is_public(ip.into()) => Err(private(ip.into())),
        Some(url::Host::Ipv6(ip)) if !is_public(ip.into()) => Err(private(ip.into())),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                tokio::net::lookup_host((name, port)),
            )
            .await;
            match lookup {
                Ok(Ok(addrs)) => {
                    let addrs: Vec<_> = addrs.collect();
                    if !addrs.is_empty() && addrs.iter().all(|a| !is_public(a.ip())) {
                        return Err(format!(
                            "{name} resolves only to private, loopback or link-local addresses"
                        ));
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Whether `ip` is an ordinary public address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        || o[0] >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0064 && s[1] == 0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn private_destinations_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/",
            "http://169.254.169.254/x",
            "http://localhost:9/",
        ] {
            let url = Url::parse(bad).unwrap();
            assert!(check_destination(&url, false).await.is_err(), "{bad}");
            assert!(check_destination(&url, true).await.is_ok(), "{bad}");
        }
        let public = Url::parse("https://8.8.8.8/").unwrap();
        assert!(check_destination(&public, false).await.is_ok());
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.example.com/a", true).is_ok());
        assert!(check_url("http://hooks.example.com/a", false).is_ok());
        assert!(check_url("http://hooks.example.com/a", true).is_err());
        for bad in [
            "ftp://x/",
            "https://",
            "not a url",
            "https://u:p@x.com/",
            "https://x.com/#f",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }
}
