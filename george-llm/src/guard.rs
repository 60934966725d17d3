//! Which addresses provider calls may reach: base URLs are parsed and normalised here,
//! and link-local and cloud metadata addresses are refused unless a profile allows them.
//!
//! A metadata service answers anyone on the machine with the machine's own cloud
//! credentials; a provider URL pointing at it would hand an agent's conversation (and
//! the API key) to it and its answer back to the agent. What is refused
//! ([`is_metadata_ip`], [`METADATA_HOSTS`]):
//!
//! | address | what lives there |
//! |---|---|
//! | `169.254.0.0/16` | IPv4 link-local: AWS, GCP, Azure, OpenStack metadata (`169.254.169.254`), ECS task credentials (`169.254.170.2`) |
//! | `fe80::/10` | IPv6 link-local |
//! | `fd00:ec2::254` | AWS instance metadata over IPv6 |
//! | `100.100.100.200` | Alibaba Cloud metadata |
//! | the above as IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 | the same hosts |
//! | `metadata.google.internal`, `metadata.goog`, `metadata`, `instance-data`, `instance-data.ec2.internal` | names of the metadata services |
//!
//! Where it is checked: [`check_url`] when a [`Registry`](crate::Registry) builds a
//! provider (the literal host of the profile's URL), every
//! [`ReqwestTransport`](crate::ReqwestTransport) request (the literal host again, as
//! IP literals never reach a resolver), and the addresses a host name resolves to in
//! the transports George builds ([`filter_resolved`], used by their DNS resolver). Not
//! checked: names resolved by an HTTP proxy (the proxy connects, not George), and
//! transports you bring yourself beyond the literal host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use george_core::{Error, ErrorKind, Result};

/// Host names of cloud metadata services, refused like their addresses (compared
/// case-insensitively, a trailing dot ignored).
pub const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Whether `ip` is link-local or a cloud metadata address (see the module table).
pub fn is_metadata_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_blocked(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_blocked(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return v4_blocked(Ipv4Addr::new(a, b, c, d));
            }
            (s[0] & 0xffc0) == 0xfe80 || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn v4_blocked(v4: Ipv4Addr) -> bool {
    v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

/// Whether `host` (a name, without port) is one of [`METADATA_HOSTS`].
pub fn is_metadata_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    METADATA_HOSTS.iter().any(|m| m.eq_ignore_ascii_case(host))
}

/// `url` parsed (WHATWG URL rules: scheme and host lower-cased, the default port
/// dropped, numeric IPv4 forms such as `2852039166` read as `169.254.169.254`).
///
/// # Errors
/// `InvalidInput` when `url` does not parse, its scheme is not `http` or `https`, or
/// it has no host.
pub fn parse_url(url: &str) -> Result<url::Url> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| Error::invalid_input(format!("base URL {url:?} does not parse: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid_input(format!(
            "base URL {url:?}: only http and https are allowed"
        )));
    }
    if parsed.host().is_none() {
        return Err(Error::invalid_input(format!(
            "base URL {url:?} has no host"
        )));
    }
    Ok(parsed)
}

/// The form two base URLs are compared in: [`parse_url`]'s, without trailing slashes
/// (`HTTPS://API.openai.com:443/v1/` and `https://api.openai.com/v1` are the same).
///
/// # Errors
/// As [`parse_url`].
pub fn normalize_url(url: &str) -> Result<String> {
    let parsed = parse_url(url)?;
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Refuses `url` when its host is a metadata name or a link-local / metadata IP
/// literal, unless `allow_link_local`.
///
/// # Errors
/// `InvalidInput` as [`parse_url`]; `PermissionDenied` naming the host and the
/// setting that would allow it.
pub fn check_url(url: &str, allow_link_local: bool) -> Result<url::Url> {
    let parsed = parse_url(url)?;
    if allow_link_local {
        return Ok(parsed);
    }
    let refused = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => is_metadata_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_metadata_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => is_metadata_host(name),
        None => false,
    };
    if refused {
        return Err(refusal(parsed.host_str().unwrap_or_default()));
    }
    Ok(parsed)
}

/// The addresses of `addrs` that may be connected to; `Err` (a message) when `host`
/// resolved only to refused ones.
pub fn filter_resolved(
    host: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> std::result::Result<Vec<SocketAddr>, String> {
    let mut refused = 0usize;
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| {
            let bad = is_metadata_ip(a.ip());
            refused += usize::from(bad);
            !bad
        })
        .collect();
    if kept.is_empty() && refused > 0 {
        return Err(refusal(host).message().to_string());
    }
    Ok(kept)
}

/// The refusal of `host`, naming the setting that would allow it.
pub(crate) fn refusal(host: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "{host} is a link-local or cloud metadata address: provider calls may not reach \
             it unless the operator's provider profile sets allow_link_local"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_addresses() {
        let rows: &[(&str, bool)] = &[
            ("169.254.169.254", true),
            ("169.254.170.2", true),
            ("100.100.100.200", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fd00:ec2::254", true),
            ("::ffff:169.254.169.254", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("10.0.0.5", false),
            ("192.168.1.10", false),
            ("100.100.100.201", false),
            ("fec0::1", false),
            ("fd00:ec2::253", false),
        ];
        for (ip, refused) in rows {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(is_metadata_ip(parsed), *refused, "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_by_literal_host_and_name() {
        for url in [
            "http://169.254.169.254/latest",
            "http://2852039166/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://Metadata.Google.Internal./computeMetadata/v1",
        ] {
            let e = check_url(url, false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{url}");
            assert!(e.message().contains("allow_link_local"), "{url}: {e}");
            check_url(url, true).unwrap();
        }
        check_url("http://localhost:11434/v1", false).unwrap();
        assert_eq!(
            check_url("file:///etc/passwd", true).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn normalised_urls_compare_equal() {
        assert_eq!(
            normalize_url("HTTPS://API.openai.com:443/v1/").unwrap(),
            normalize_url("https://api.openai.com/v1").unwrap()
        );
        assert_ne!(
            normalize_url("https://api.openai.com/v1").unwrap(),
            normalize_url("https://api.openai.com.evil/v1").unwrap()
        );
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let mixed = filter_resolved("x", [a("169.254.169.254:80"), a("127.0.0.1:80")]).unwrap();
        assert_eq!(mixed, vec![a("127.0.0.1:80")]);
        let only_bad = filter_resolved("evil.example", [a("169.254.169.254:80")]).unwrap_err();
        assert!(only_bad.contains("evil.example"), "{only_bad}");
    }
}
