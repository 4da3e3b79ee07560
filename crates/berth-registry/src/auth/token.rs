//! Bearer tokens: JWTs signed with HMAC-SHA256 (`HS256`) by this registry, for itself.
//!
//! Claims (Docker's token spec): `iss` (issuer), `sub` (user, empty when anonymous), `aud`
//! (the service), `exp`, `nbf`, `iat`, `jti`, and `access`, a list of
//! `{"type":"repository","name":"team/app","actions":["pull"]}` grants. A token is valid
//! when its signature checks with the key, `alg` is `HS256` (never `none`), `iss` and `aud`
//! match, and now is within `[nbf - 60s, exp)`.
//!
//! Because the issuer and the verifier are the same process, a shared secret is enough. A
//! registry fronted by an external token server (signing with RS256/ES256 and a certificate
//! chain) would replace [`TokenIssuer::verify`]; that is not implemented.

use super::Scope;
use crate::config::TokenConfig;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::time::Duration;

type HmacSha256 = Hmac<sha2::Sha256>;
const LEEWAY: u64 = 60;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Serialize, Deserialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

pub struct TokenIssuer {
    realm: Option<String>,
    scheme: &'static str,
    service: String,
    issuer: String,
    key: Vec<u8>,
    ttl: Duration,
}

/// A freshly issued token and what the endpoint reports about it.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: u64,
}

impl TokenIssuer {
    /// `https`: the registry serves TLS itself, so its own token endpoint is `https://`.
    pub fn new(cfg: &TokenConfig, https: bool) -> TokenIssuer {
        let key = cfg.key.clone().unwrap_or_else(|| {
            use rand::Rng as _;
            let mut k = vec![0u8; 32];
            rand::rng().fill_bytes(&mut k);
            k
        });
        TokenIssuer {
            realm: cfg.realm.clone(),
            scheme: if https { "https" } else { "http" },
            service: cfg.service.clone(),
            issuer: cfg.issuer.clone(),
            key,
            ttl: cfg.ttl,
        }
    }

    /// The token endpoint's URL for the challenge: configured, or this server's `/token`.
    pub fn realm(&self, host: &str) -> String {
        self.realm.clone().unwrap_or_else(|| format!("{}://{host}/token", self.scheme))
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn issue(&self, subject: &str, grants: &[Scope]) -> Issued {
        let now = crate::storage::now_unix();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: self.service.clone(),
            exp: now + self.ttl.as_secs(),
            nbf: now,
            iat: now,
            jti: crate::storage::random_id(),
            access: grants
                .iter()
                .map(|s| Access { kind: s.kind.clone(), name: s.name.clone(), actions: s.actions.clone() })
                .collect(),
        };
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let sig = B64.encode(self.mac(&signing_input).finalize().into_bytes());
        Issued { token: format!("{signing_input}.{sig}"), expires_in: self.ttl.as_secs(), issued_at: now }
    }

    /// Checks a token and returns its grants, or why it is not acceptable.
    pub fn verify(&self, token: &str) -> Result<Vec<Scope>, &'static str> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("malformed");
        };
        let header: serde_json::Value =
            B64.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("malformed header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err("unsupported algorithm");
        }
        let sig = B64.decode(s).map_err(|_| "malformed signature")?;
        self.mac(&format!("{h}.{p}")).verify_slice(&sig).map_err(|_| "bad signature")?;
        let claims: Claims =
            B64.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("malformed claims")?;
        let now = crate::storage::now_unix();
        if claims.iss != self.issuer || claims.aud != self.service {
            return Err("wrong issuer or audience");
        }
        if now >= claims.exp || now + LEEWAY < claims.nbf {
            return Err("expired or not yet valid");
        }
        Ok(claims.access.into_iter().map(|a| Scope { kind: a.kind, name: a.name, actions: a.actions }).collect())
    }

    fn mac(&self, input: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(input.as_bytes());
        m
    }
}

/// Formats unix seconds as RFC 3339 UTC (`issued_at` in the token response).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for any date after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&TokenConfig::new("registry.test"), false)
    }

    #[test]
    fn tokens_verify_and_reject_tampering() {
        let i = issuer();
        let t = i.issue("alice", &[Scope::repository("a/b", &["pull"])]).token;
        assert_eq!(i.verify(&t).unwrap(), vec![Scope::repository("a/b", &["pull"])]);
        let (head, sig) = t.rsplit_once('.').unwrap();
        let flipped: String =
            sig.chars().enumerate().map(|(n, c)| if n == 5 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
        assert!(i.verify(&format!("{head}.{flipped}")).is_err());
        let widened = B64.encode(br#"{"iss":"berth-registry","sub":"alice","aud":"registry.test","exp":9999999999,"nbf":0,"iat":0,"jti":"x","access":[{"type":"repository","name":"a/b","actions":["push"]}]}"#);
        let (h, _) = head.split_once('.').unwrap();
        assert!(i.verify(&format!("{h}.{widened}.{sig}")).is_err());
        assert!(issuer().verify(&t).is_err(), "another key");
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), t.split('.').nth(1).unwrap());
        assert!(i.verify(&none).is_err());
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
