//! The route table: every Engine API endpoint berth serves, in one place.
//!
//! Patterns are matched segment by segment: `{}` captures one segment, `{*}` captures one or
//! more (image names contain `/`, and the docker CLI does not escape them:
//! `POST /images/localhost:5000/team/app/push`). Versioned paths (`/v1.45/...`) are accepted
//! from API 1.24 up to the version berth implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Method;

use crate::Daemon;
use crate::error::{ApiError, ApiResult};
use crate::http::{Req, Resp};
use crate::routes::{build, buildkit, containers, distribution, exec, images, networks, swarm, system, volumes};

pub type Handler = fn(Arc<Daemon>, Req) -> Pin<Box<dyn Future<Output = ApiResult<Resp>> + Send>>;

macro_rules! h {
    ($f:path) => {{
        fn wrap(d: Arc<Daemon>, r: Req) -> Pin<Box<dyn Future<Output = ApiResult<Resp>> + Send>> {
            Box::pin($f(d, r))
        }
        wrap as Handler
    }};
}

pub struct Route {
    pub method: Method,
    pub pattern: &'static str,
    pub handler: Handler,
}

pub fn routes() -> Vec<Route> {
    let r = |method: Method, pattern: &'static str, handler: Handler| Route { method, pattern, handler };
    use Method as M;
    vec![
        // system
        r(M::GET, "/_ping", h!(system::ping)),
        r(M::HEAD, "/_ping", h!(system::ping)),
        r(M::GET, "/version", h!(system::version)),
        r(M::GET, "/info", h!(system::info)),
        r(M::GET, "/events", h!(system::events)),
        r(M::GET, "/system/df", h!(system::df)),
        r(M::POST, "/system/check", h!(system::check)),
        // containers
        r(M::GET, "/containers/json", h!(containers::list)),
        r(M::POST, "/containers/create", h!(containers::create)),
        r(M::POST, "/containers/prune", h!(containers::prune)),
        r(M::GET, "/containers/{}/json", h!(containers::inspect)),
        r(M::GET, "/containers/{}/top", h!(containers::top)),
        r(M::GET, "/containers/{}/logs", h!(containers::logs)),
        r(M::GET, "/containers/{}/changes", h!(containers::changes)),
        r(M::GET, "/containers/{}/export", h!(containers::export)),
        r(M::GET, "/containers/{}/stats", h!(containers::stats)),
        r(M::POST, "/containers/{}/resize", h!(containers::resize)),
        r(M::POST, "/containers/{}/start", h!(containers::start)),
        r(M::POST, "/containers/{}/stop", h!(containers::stop)),
        r(M::POST, "/containers/{}/restart", h!(containers::restart)),
        r(M::POST, "/containers/{}/kill", h!(containers::kill)),
        r(M::POST, "/containers/{}/update", h!(containers::update)),
        r(M::POST, "/containers/{}/rename", h!(containers::rename)),
        r(M::POST, "/containers/{}/pause", h!(containers::pause)),
        r(M::POST, "/containers/{}/unpause", h!(containers::unpause)),
        r(M::POST, "/containers/{}/attach", h!(containers::attach)),
        r(M::POST, "/containers/{}/wait", h!(containers::wait)),
        r(M::DELETE, "/containers/{}", h!(containers::remove)),
        r(M::DELETE, "/containers/{}/{}", h!(containers::remove_link)),
        r(M::HEAD, "/containers/{}/archive", h!(containers::archive_head)),
        r(M::GET, "/containers/{}/archive", h!(containers::archive_get)),
        r(M::PUT, "/containers/{}/archive", h!(containers::archive_put)),
        r(M::POST, "/containers/{}/exec", h!(exec::create)),
        r(M::POST, "/exec/{}/start", h!(exec::start)),
        r(M::POST, "/exec/{}/resize", h!(exec::resize)),
        r(M::GET, "/exec/{}/json", h!(exec::inspect)),
        r(M::POST, "/commit", h!(containers::commit)),
        // images
        r(M::GET, "/images/json", h!(images::list)),
        r(M::POST, "/images/create", h!(images::create)),
        r(M::POST, "/images/load", h!(images::load)),
        r(M::POST, "/images/prune", h!(images::prune)),
        r(M::GET, "/images/get", h!(images::save)),
        r(M::GET, "/images/search", h!(distribution::search)),
        r(M::GET, "/distribution/{*}/json", h!(distribution::inspect)),
        r(M::POST, "/images/{*}/push", h!(distribution::push)),
        r(M::POST, "/auth", h!(distribution::auth)),
        r(M::GET, "/images/{*}/get", h!(images::save_one)),
        r(M::GET, "/images/{*}/json", h!(images::inspect)),
        r(M::GET, "/images/{*}/history", h!(images::history)),
        r(M::POST, "/images/{*}/tag", h!(images::tag)),
        r(M::DELETE, "/images/{*}", h!(images::remove)),
        // build
        r(M::POST, "/build", h!(build::build)),
        r(M::POST, "/build/prune", h!(build::prune)),
        r(M::POST, "/build/contexts/{}/diff", h!(build::context_diff)),
        // BuildKit (buildx's "docker" driver): HTTP/2 after an h2c upgrade
        r(M::POST, "/session", h!(buildkit::session)),
        r(M::POST, "/grpc", h!(buildkit::grpc)),
        // networks
        r(M::GET, "/networks", h!(networks::list)),
        // dockerd routes this one list with a trailing slash too (and only this one).
        r(M::GET, "/networks/", h!(networks::list)),
        r(M::POST, "/networks/create", h!(networks::create)),
        r(M::POST, "/networks/prune", h!(networks::prune)),
        r(M::GET, "/networks/{}", h!(networks::inspect)),
        r(M::DELETE, "/networks/{}", h!(networks::remove)),
        r(M::POST, "/networks/{}/connect", h!(networks::connect)),
        r(M::POST, "/networks/{}/disconnect", h!(networks::disconnect)),
        // swarm mode: not a manager, as a standalone dockerd answers
        r(M::GET, "/swarm", h!(swarm::not_a_manager)),
        r(M::POST, "/swarm/leave", h!(swarm::leave)),
        r(M::POST, "/swarm/init", h!(swarm::init)),
        r(M::POST, "/swarm/join", h!(swarm::init)),
        r(M::GET, "/nodes", h!(swarm::not_a_manager)),
        r(M::GET, "/services", h!(swarm::not_a_manager)),
        r(M::GET, "/tasks", h!(swarm::not_a_manager)),
        r(M::GET, "/secrets", h!(swarm::not_a_manager)),
        r(M::GET, "/configs", h!(swarm::not_a_manager)),
        // volumes
        r(M::GET, "/volumes", h!(volumes::list)),
        r(M::POST, "/volumes/create", h!(volumes::create)),
        r(M::POST, "/volumes/prune", h!(volumes::prune)),
        r(M::GET, "/volumes/{}", h!(volumes::inspect)),
        r(M::DELETE, "/volumes/{}", h!(volumes::remove)),
    ]
}

/// Matches `path` against `pattern`, returning the captured parameters.
pub fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let pat: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    fn go(pat: &[&str], segs: &[&str], out: &mut Vec<String>) -> bool {
        match (pat.first(), segs.first()) {
            (None, None) => true,
            (None, Some(_)) | (Some(_), None) => false,
            (Some(&"{}"), Some(s)) => {
                if s.is_empty() {
                    return false;
                }
                out.push(berth_api::percent::decode(s));
                if go(&pat[1..], &segs[1..], out) {
                    return true;
                }
                out.pop();
                false
            }
            (Some(&"{*}"), _) => {
                // Greedy, backing off so the literal segments after it still match.
                for take in (1..=segs.len()).rev() {
                    if segs[..take].iter().any(|s| s.is_empty()) {
                        continue;
                    }
                    out.push(berth_api::percent::decode(&segs[..take].join("/")));
                    if go(&pat[1..], &segs[take..], out) {
                        return true;
                    }
                    out.pop();
                }
                false
            }
            (Some(p), Some(s)) => p == s && go(&pat[1..], &segs[1..], out),
        }
    }
    let mut out = Vec::new();
    go(&pat, &segs, &mut out).then_some(out)
}

/// Splits `/v1.45/containers/json` into the version and the rest.
pub fn split_version(path: &str) -> ApiResult<(Option<(u32, u32)>, String)> {
    let rest = path.trim_start_matches('/');
    if let Some(v) = rest.strip_prefix('v') {
        let (ver, tail) = v.split_once('/').unwrap_or((v, ""));
        if let Some((a, b)) = ver.split_once('.')
            && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
        {
            let n = a * 100 + b;
            let max = parse_v(berth_api::API_VERSION);
            let min = parse_v(berth_api::MIN_API_VERSION);
            if n > max {
                return Err(ApiError::bad_request(format!(
                    "client version {a}.{b} is too new. Maximum supported API version is {}",
                    berth_api::API_VERSION
                )));
            }
            if n < min {
                return Err(ApiError::bad_request(format!(
                    "client version {a}.{b} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                    berth_api::MIN_API_VERSION
                )));
            }
            return Ok((Some((a, b)), format!("/{tail}")));
        }
    }
    Ok((None, format!("/{rest}")))
}

fn parse_v(s: &str) -> u32 {
    let (a, b) = s.split_once('.').unwrap_or(("1", "24"));
    a.parse::<u32>().unwrap_or(1) * 100 + b.parse::<u32>().unwrap_or(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(matches("/containers/{}/json", "/containers/abc/json"), Some(vec!["abc".into()]));
        assert_eq!(matches("/containers/{}/json", "/containers//json"), None);
        assert_eq!(
            matches("/images/{*}/push", "/images/localhost:5000/team/app/push"),
            Some(vec!["localhost:5000/team/app".into()])
        );
        assert_eq!(matches("/images/{*}", "/images/busybox"), Some(vec!["busybox".into()]));
        assert_eq!(matches("/images/{*}/json", "/images/json"), None);
        assert_eq!(matches("/images/{*}/json", "/images/a/json/json"), Some(vec!["a/json".into()]));
        assert_eq!(matches("/networks/", "/networks/"), Some(vec![]));
        assert_eq!(matches("/networks/{}", "/networks/"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(split_version("/v1.45/info").unwrap(), (Some((1, 45)), "/info".to_string()));
        assert_eq!(split_version("/info").unwrap(), (None, "/info".to_string()));
        assert!(split_version("/v1.99/info").is_err());
        assert!(split_version("/v1.12/info").is_err());
    }

    #[test]
    fn every_route_is_distinct() {
        let rs = routes();
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                assert!(!(a.method == b.method && a.pattern == b.pattern), "{} {}", a.method, a.pattern);
            }
        }
    }
}
