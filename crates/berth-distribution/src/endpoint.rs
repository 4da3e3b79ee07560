//! Where a registry is and how to speak to it, following dockerd's rules.
//!
//! - `docker.io` (and `index.docker.io`) is served by `https://registry-1.docker.io`; the
//!   daemon's `registry-mirrors` are tried first, in order, and the Hub is the fallback.
//! - Every other registry is spoken to over HTTPS, unless it is insecure: listed in
//!   `insecure-registries` (as `host`, `host:port` or a CIDR its address falls in) or on the
//!   loopback (`localhost`, 127.0.0.0/8, ::1), which Docker treats as insecure by default.
//!   For an insecure registry HTTPS is tried first and plain HTTP next.

use std::net::IpAddr;

pub const HUB_DOMAIN: &str = "docker.io";
pub const HUB_REGISTRY: &str = "https://registry-1.docker.io";
/// The key Docker stores Hub credentials under, and the Hub's v1 search service.
pub const HUB_INDEX: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Mirror URLs for Docker Hub (`http://127.0.0.1:5001`, `https://mirror.example`).
    pub mirrors: Vec<String>,
    /// `insecure-registries` entries.
    pub insecure: Vec<String>,
}

/// One base URL to try for a registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash.
    pub base: String,
    /// A mirror: failures fall through to the next endpoint.
    pub mirror: bool,
}

/// `https://index.docker.io/v1/`, `http://h:5000`, `h:5000/` → the registry's domain.
pub fn normalize_domain(server: &str) -> String {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" | "registry.hub.docker.com" => {
            HUB_DOMAIN.to_string()
        }
        h => h.to_string(),
    }
}

/// The key credentials for `domain` are stored under in `config.json` (Docker's choice).
pub fn config_key(domain: &str) -> String {
    if domain == HUB_DOMAIN { HUB_INDEX.to_string() } else { domain.to_string() }
}

fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => domain,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else { return false };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl RegistryOptions {
    /// Whether plain HTTP may be used for `domain` (`host[:port]`).
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        let ip = host.parse::<IpAddr>().ok();
        if host == "localhost" || ip.is_some_and(|i| i.is_loopback()) {
            return true;
        }
        self.insecure
            .iter()
            .map(|e| insecure_entry(e))
            .any(|e| e == domain || e == host || ip.is_some_and(|i| in_cidr(i, e)))
    }

    /// What `GET /info` reports (`docker info`'s "Insecure Registries" and "Registry
    /// Mirrors"), in dockerd's shape: mirrors as `scheme://host[:port]/`; CIDR entries of
    /// `insecure-registries` and then the loopback ranges, which are always insecure, under
    /// `InsecureRegistryCIDRs`; every other entry as an insecure index by name; `docker.io`
    /// as the official, secure index with the mirrors.
    pub fn service_config(&self) -> berth_api::models::RegistryServiceConfig {
        use berth_api::models::{IndexInfo, RegistryServiceConfig};
        let mirrors: Vec<String> = self.mirrors.iter().map(|m| format!("{}/", mirror_base(m))).collect();
        let mut cidrs = Vec::new();
        let mut index_configs = std::collections::BTreeMap::new();
        for e in self.insecure.iter().map(|e| insecure_entry(e)).chain(["::1/128", "127.0.0.0/8"]) {
            if e.contains('/') {
                if !cidrs.iter().any(|c| c == e) {
                    cidrs.push(e.to_string());
                }
            } else if !e.is_empty() {
                let info = IndexInfo { name: e.to_string(), mirrors: Vec::new(), secure: false, official: false };
                index_configs.insert(e.to_string(), info);
            }
        }
        let hub = IndexInfo { name: HUB_DOMAIN.into(), mirrors: mirrors.clone(), secure: true, official: true };
        index_configs.insert(HUB_DOMAIN.into(), hub);
        RegistryServiceConfig { insecure_registry_cidrs: cidrs, index_configs, mirrors }
    }

    /// The endpoints to try for `domain`, in order.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if domain == HUB_DOMAIN {
            for m in &self.mirrors {
                out.push(Endpoint { base: mirror_base(m), mirror: true });
            }
            out.push(Endpoint { base: HUB_REGISTRY.into(), mirror: false });
            return out;
        }
        if self.is_insecure(domain) {
            // Without TLS compiled in, HTTPS can only fail: go straight to HTTP.
            if crate::http::TLS {
                out.push(Endpoint { base: format!("https://{domain}"), mirror: true });
            }
            out.push(Endpoint { base: format!("http://{domain}"), mirror: false });
        } else {
            out.push(Endpoint { base: format!("https://{domain}"), mirror: false });
        }
        out
    }
}

/// A `registry-mirrors` entry as a base URL: `scheme://host[:port]`, HTTPS when it names no
/// scheme.
fn mirror_base(m: &str) -> String {
    let base = m.trim().trim_end_matches('/');
    if base.contains("://") { base.to_string() } else { format!("https://{base}") }
}

/// Checks a `registry-mirrors` entry as dockerd does (at start, so a typo is not found at
/// the first pull): an http or https URL (a bare `host[:port]` means https), without
/// credentials, query or fragment. `Err` names the entry and what is wrong with it.
pub fn validate_mirror(m: &str) -> std::result::Result<(), String> {
    let t = m.trim();
    let (scheme, rest) = t.split_once("://").unwrap_or(("https", t));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let problem = if scheme != "http" && scheme != "https" {
        format!("unsupported scheme {scheme:?}")
    } else if host.is_empty() {
        "no host".to_string()
    } else if host.contains('@') {
        "username/password not allowed".to_string()
    } else if rest.contains(['?', '#']) {
        "query or fragment at end of the URI".to_string()
    } else {
        return Ok(());
    };
    Err(format!("invalid mirror: {problem} in {m:?}"))
}

/// An `insecure-registries` entry without the scheme or trailing slash people write.
fn insecure_entry(e: &str) -> &str {
    e.trim().trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/')
}

/// Whether an error on `ep` lets the next endpoint be tried: the registry could not be
/// reached, or a mirror did not have (or would not give) the image.
pub(crate) fn may_fall_back(e: &crate::DistError, ep: &Endpoint) -> bool {
    use crate::DistError;
    match e {
        DistError::Unavailable(_) => true,
        DistError::NotFound(_) | DistError::Unauthorized(_) | DistError::Denied(_) | DistError::Registry(_) => {
            ep.mirror
        }
        _ => false,
    }
}

/// The failures met while trying a registry's endpoints in turn (mirrors, then HTTPS, then
/// plain HTTP for an insecure registry), and the one error to report from them.
#[derive(Default)]
pub(crate) struct Attempts {
    /// The first failure (HTTPS's, when HTTP is tried after it).
    first: Option<crate::DistError>,
    /// The latest later one: that endpoint got further, so its error says more.
    last: Option<crate::DistError>,
}

impl Attempts {
    /// Notes a failure on `ep`. `Err` when the attempts end here (the error is not one to
    /// fall back from).
    pub fn failed(&mut self, e: crate::DistError, ep: &Endpoint) -> crate::Result<()> {
        if !may_fall_back(&e, ep) {
            return Err(explain(self.first.take(), e));
        }
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.last = Some(e);
        }
        Ok(())
    }

    /// The error to report once every endpoint of `domain` has failed.
    pub fn error(self, domain: &str) -> crate::DistError {
        match (self.first, self.last) {
            (f, Some(l)) => explain(f, l),
            (Some(f), None) => f,
            (None, None) => crate::DistError::Unavailable(format!("no endpoint for {domain}")),
        }
    }
}

/// The error to report when every endpoint failed: a TLS failure over HTTPS explains more
/// than what an HTTPS server gives the plain-HTTP retry: Go's answers `400`, rustls' a TLS
/// alert (not HTTP at all) or nothing.
pub fn explain(https: Option<crate::DistError>, last: crate::DistError) -> crate::DistError {
    const SPEAKS_TLS: &[&str] = &["400 Bad Request", "invalid HTTP", "closed before message completed"];
    match https {
        Some(h) if h.to_string().contains("tls:") && SPEAKS_TLS.iter().any(|m| last.to_string().contains(m)) => h,
        _ => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let o = RegistryOptions {
            mirrors: vec![],
            insecure: vec!["reg.lan:5000".into(), "10.1.0.0/16".into(), "plain.lan".into()],
        };
        for yes in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "reg.lan:5000",
            "10.1.2.3:80",
            "plain.lan:443",
        ] {
            assert!(o.is_insecure(yes), "{yes}");
        }
        for no in ["reg.lan:5001", "10.2.0.1:5000", "example.com", "docker.io"] {
            assert!(!o.is_insecure(no), "{no}");
        }
    }

    #[test]
    fn a_tls_failure_explains_more_than_an_https_servers_answer_to_plain_http() {
        let tls = || Some(crate::DistError::Unavailable("Get \"https://r/v2/\": tls: unknown issuer".into()));
        for plain in [
            "400 Bad Request",
            "request to http://r/v2/: invalid HTTP version parsed",
            "connection closed before message completed",
        ] {
            let e = explain(tls(), crate::DistError::Unavailable(plain.into()));
            assert!(e.to_string().contains("tls:"), "{plain}: {e}");
        }
        let e = explain(tls(), crate::DistError::NotFound("manifest unknown".into()));
        assert_eq!(e.to_string(), "manifest unknown", "plain HTTP got further");
    }

    #[test]
    fn hub_and_mirrors() {
        let o = RegistryOptions { mirrors: vec!["http://127.0.0.1:5001/".into()], insecure: vec![] };
        let e = o.endpoints("docker.io");
        assert_eq!(e[0], Endpoint { base: "http://127.0.0.1:5001".into(), mirror: true });
        assert_eq!(e[1].base, HUB_REGISTRY);
        assert_eq!(o.endpoints("127.0.0.1:5000").last().unwrap().base, "http://127.0.0.1:5000");
        assert_eq!(normalize_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_domain("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(config_key("docker.io"), HUB_INDEX);
    }

    #[test]
    fn info_reports_mirrors_and_insecure_registries_as_dockerd_does() {
        let o = RegistryOptions {
            mirrors: vec!["http://127.0.0.1:5001".into(), "mirror.example/".into()],
            insecure: vec!["10.1.0.0/16".into(), "http://reg.lan:5000/".into(), "127.0.0.0/8".into()],
        };
        let c = o.service_config();
        assert_eq!(c.mirrors, ["http://127.0.0.1:5001/", "https://mirror.example/"]);
        assert_eq!(c.insecure_registry_cidrs, ["10.1.0.0/16", "127.0.0.0/8", "::1/128"]);
        let names: Vec<_> = c.index_configs.keys().map(String::as_str).collect();
        assert_eq!(names, ["docker.io", "reg.lan:5000"]);
        let hub = &c.index_configs["docker.io"];
        assert!(hub.secure && hub.official);
        assert_eq!(hub.mirrors, c.mirrors);
        assert!(!c.index_configs["reg.lan:5000"].secure);
        assert!(o.is_insecure("reg.lan:5000") && o.is_insecure("10.1.2.3:5000") && !o.is_insecure("10.2.0.1"));
    }

    #[test]
    fn mirrors_are_checked() {
        for ok in ["https://mirror.example", "http://127.0.0.1:5001/", "mirror.example:5000"] {
            assert_eq!(validate_mirror(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ftp://mirror.example", "unsupported scheme \"ftp\""),
            ("https://user:pw@mirror.example", "username/password"),
            ("https://mirror.example/?x=1", "query or fragment"),
            ("https://", "no host"),
        ] {
            let e = validate_mirror(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
