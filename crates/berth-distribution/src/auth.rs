//! Credentials and challenges.
//!
//! An [`AuthConfig`] is what Docker clients send: in the `X-Registry-Auth` header of pulls
//! and pushes (base64url of its JSON) and as the body of `POST /auth`. A registry answers
//! an unauthenticated request with `401` and a `WWW-Authenticate` [`Challenge`]: `Basic`
//! (send the credentials with every request) or `Bearer realm=…,service=…,scope=…`, Docker
//! Hub's flow, where the client asks the realm for a token covering the scopes (with the
//! credentials, if it has any, as basic auth) and retries with `Authorization: Bearer`.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(username:password)`, as stored in `~/.docker/config.json`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    /// An OAuth refresh token; berth sends it as the password of a token request.
    #[serde(default, rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    /// A bearer token to send as is.
    #[serde(default, rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

/// Decodes standard or URL-safe base64, padded or not (clients differ).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD].iter().find_map(|e| e.decode(s).ok())
}

impl AuthConfig {
    /// Parses an `X-Registry-Auth` header. An empty or unparsable header is no credentials,
    /// as Docker treats it.
    pub fn from_header(h: Option<&str>) -> AuthConfig {
        h.filter(|h| !h.trim().is_empty())
            .and_then(decode_base64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Picks, from an `X-Registry-Config` header (what a build sends: every registry's
    /// credentials, by server address), the ones for `domain`. Docker Hub's entry may be
    /// keyed `https://index.docker.io/v1/`, as in `~/.docker/config.json`.
    pub fn for_registry(header: Option<&str>, domain: &str) -> AuthConfig {
        let all: HashMap<String, AuthConfig> = header
            .filter(|h| !h.trim().is_empty())
            .and_then(decode_base64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let host = |k: &str| {
            k.trim_start_matches("https://").trim_start_matches("http://").split('/').next().unwrap_or("").to_string()
        };
        let hub = domain == "docker.io";
        all.into_iter()
            .find(|(k, _)| {
                let h = host(k);
                h == domain || (hub && (h == "index.docker.io" || h == "registry-1.docker.io"))
            })
            .map(|(_, a)| a)
            .unwrap_or_default()
    }

    /// The username and password, from the fields or from `auth`.
    pub fn credentials(&self) -> Option<(String, String)> {
        if !self.identity_token.is_empty() {
            return Some(("<token>".into(), self.identity_token.clone()));
        }
        if !self.username.is_empty() {
            return Some((self.username.clone(), self.password.clone()));
        }
        let raw = decode_base64(&self.auth)?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        (!u.is_empty()).then(|| (u.to_string(), p.to_string()))
    }

    pub fn is_empty(&self) -> bool {
        self.credentials().is_none() && self.registry_token.is_empty()
    }
}

pub fn basic_header(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Basic { realm: String },
    Bearer { realm: String, service: String, scope: Vec<String>, error: String },
}

/// Parses `WWW-Authenticate` (one challenge; Bearer preferred if several are given).
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm"),
            service: get("service"),
            scope: get("scope").split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
            error: get("error"),
        }),
        "basic" => Some(Challenge::Basic { realm: get("realm") }),
        _ => None,
    }
}

/// `k="v", k2=v2` with quoted strings that may hold commas and `\"`.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let key: String = b[start..i].iter().collect::<String>().trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                val.push(b[i]);
                i += 1;
            }
            val = val.trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// The token endpoint's answer (`token`, or OAuth's `access_token`).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
}

impl TokenResponse {
    pub fn value(self) -> String {
        if self.token.is_empty() { self.access_token } else { self.token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(r#"Bearer realm="http://h/token",service="reg",scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope""#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://h/token".into(),
                service: "reg".into(),
                scope: vec!["repository:a/b:pull,push".into(), "repository:c:pull".into()],
                error: "insufficient_scope".into()
            }
        );
        assert_eq!(parse_challenge("Basic realm=\"x y\"").unwrap(), Challenge::Basic { realm: "x y".into() });
        assert!(parse_challenge("Negotiate").is_none());
    }

    #[test]
    fn build_registry_config_picks_the_registry() {
        use base64::engine::general_purpose::STANDARD;
        let json = r#"{"127.0.0.1:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"username":"hub","password":"q"}}"#;
        let h = STANDARD.encode(json);
        assert_eq!(AuthConfig::for_registry(Some(&h), "127.0.0.1:5000").credentials(), Some(("u".into(), "p".into())));
        assert_eq!(AuthConfig::for_registry(Some(&h), "docker.io").credentials(), Some(("hub".into(), "q".into())));
        assert_eq!(AuthConfig::for_registry(Some(&h), "other:5000"), AuthConfig::default());
        assert_eq!(AuthConfig::for_registry(None, "docker.io"), AuthConfig::default());
    }

    #[test]
    fn header_credentials() {
        let json = r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let a = AuthConfig::from_header(Some(&h));
        assert_eq!(a.credentials(), Some(("u".into(), "p".into())));
        let a =
            AuthConfig { auth: base64::engine::general_purpose::STANDARD.encode("me:se:cret"), ..Default::default() };
        assert_eq!(a.credentials(), Some(("me".into(), "se:cret".into())));
        assert!(AuthConfig::from_header(Some("e30=")).is_empty());
        assert!(AuthConfig::from_header(Some("garbage!")).is_empty());
    }
}
