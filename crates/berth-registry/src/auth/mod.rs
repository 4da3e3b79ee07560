//! Who may do what: authentication modes, scopes, and the one access policy.
//!
//! # Vocabulary
//!
//! A **scope** is Docker's `type:name:actions` triple: `repository:team/app:pull,push`, or
//! `registry:catalog:*` (list the catalog) and `registry:catalog:search` (`/v1/search`).
//! Every route declares the scopes it needs (see `router.rs`); `GET /v2/` needs none, only
//! a valid identity. Repository actions are `pull`, `push` and `delete`; `*` grants all.
//!
//! A **principal** is who the request is from: a user from the htpasswd file, or anonymous.
//!
//! # Modes (chosen by [`crate::Config`])
//!
//! - **Open** (no htpasswd, no token config): everyone may do everything.
//! - **Basic** (`htpasswd`): requests carry `Authorization: Basic`. Wrong credentials are
//!   always `401`. Missing credentials are `401` with `WWW-Authenticate: Basic realm="…"`,
//!   except for reads when `anonymous_pull` is on.
//! - **Token** (`htpasswd` + `token`): Docker Hub's flow. A request without a valid bearer
//!   token that covers its scopes gets `401` with
//!   `WWW-Authenticate: Bearer realm="<token endpoint>",service="…",scope="…"`; the client
//!   calls the realm with basic credentials (or none), receives a signed token listing the
//!   granted actions, and retries with `Authorization: Bearer <token>`. When `anonymous_pull`
//!   is on, reads also succeed with no `Authorization` header at all. Valid basic
//!   credentials are accepted in place of a token (that is what `docker search` sends).
//!
//! # Policy
//!
//! `Auth::allowed` is the whole policy: an authenticated user may do anything; anonymous
//! callers may only read (`pull`, the catalog, search), and only with `anonymous_pull`. The
//! token endpoint grants exactly what this allows of what was asked, so a token never
//! carries more than basic auth would have permitted. `DENIED` is reserved for finer
//! policies (per-user ACLs) that this version does not have.

pub mod htpasswd;
pub mod token;

use crate::error::{RegistryError, Result};
use htpasswd::Htpasswd;
use http::HeaderMap;
use token::TokenIssuer;

/// A `type:name:actions` access request or grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    pub fn repository(name: &str, actions: &[&str]) -> Scope {
        Scope { kind: "repository".into(), name: name.into(), actions: actions.iter().map(|a| a.to_string()).collect() }
    }

    pub fn catalog(action: &str) -> Scope {
        Scope { kind: "registry".into(), name: "catalog".into(), actions: vec![action.into()] }
    }

    /// Parses `type:name:actions`; the name may itself contain `:` (it never does for
    /// repositories, but a port-qualified name from an odd client should not panic).
    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions = actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
        Some(Scope { kind: kind.into(), name: name.into(), actions })
    }

    /// Whether this grant covers `action` on the same resource as `need`.
    fn covers(&self, need: &Scope, action: &str) -> bool {
        self.kind == need.kind && self.name == need.name && self.actions.iter().any(|a| a == action || a == "*")
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User(String),
}

pub(crate) enum Mode {
    Open,
    Basic(Htpasswd),
    Token(Htpasswd, TokenIssuer),
}

pub(crate) struct Auth {
    pub mode: Mode,
    pub anonymous_pull: bool,
    pub basic_realm: String,
}

/// What a request may do, once authorized: the grants to check optional extras against
/// (a cross-repository mount's `from` repository).
#[derive(Debug, Clone)]
pub(crate) enum Grants {
    All,
    Principal(Principal),
    Token(Vec<Scope>),
}

impl Auth {
    /// The policy: may `who` perform `action` on `scope`'s resource?
    pub fn allowed(&self, who: &Principal, scope: &Scope, action: &str) -> bool {
        match who {
            Principal::User(_) => true,
            Principal::Anonymous => {
                self.anonymous_pull
                    && match scope.kind.as_str() {
                        "repository" => action == "pull",
                        "registry" => scope.name == "catalog" && (action == "*" || action == "search"),
                        _ => false,
                    }
            }
        }
    }

    /// Of `requested`, what `who` may have. Used by the token endpoint.
    pub fn grant(&self, who: &Principal, requested: &Scope) -> Scope {
        let mut g = requested.clone();
        g.actions.retain(|a| self.allowed(who, requested, a));
        g
    }

    /// Authorizes a request that needs every action of every scope in `needs`. An empty
    /// `needs` asks only for a valid identity (or, in open mode, nothing).
    pub async fn authorize(&self, headers: &HeaderMap, host: &str, needs: &[Scope]) -> Result<Grants> {
        let authz = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match &self.mode {
            Mode::Open => Ok(Grants::All),
            Mode::Basic(htpasswd) => {
                let challenge = format!("Basic realm=\"{}\"", self.basic_realm);
                let who = match authz.and_then(htpasswd::parse_basic) {
                    Some((user, pass)) => {
                        if !htpasswd.verify(&user, &pass).await {
                            return Err(unauthorized("invalid username or password", challenge));
                        }
                        Principal::User(user)
                    }
                    None => Principal::Anonymous,
                };
                let ok = match who {
                    Principal::User(_) => true,
                    Principal::Anonymous => !needs.is_empty() && self.permits(&who, needs),
                };
                if ok { Ok(Grants::Principal(who)) } else { Err(unauthorized("authentication required", challenge)) }
            }
            Mode::Token(users, issuer) => {
                let bearer = authz.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
                let scope_param = needs.iter().map(Scope::to_string).collect::<Vec<_>>().join(" ");
                let challenge = |error: Option<&str>| {
                    let mut c = format!("Bearer realm=\"{}\",service=\"{}\"", issuer.realm(host), issuer.service());
                    if !scope_param.is_empty() {
                        c.push_str(&format!(",scope=\"{scope_param}\""));
                    }
                    if let Some(e) = error {
                        c.push_str(&format!(",error=\"{e}\""));
                    }
                    c
                };
                // Basic credentials are accepted too: `docker search` sends them to
                // `/v1/search`, and they prove no less than the token endpoint checks.
                if let Some((user, pass)) = authz.and_then(htpasswd::parse_basic) {
                    if !users.verify(&user, &pass).await {
                        return Err(unauthorized("invalid username or password", challenge(None)));
                    }
                    return Ok(Grants::Principal(Principal::User(user)));
                }
                let Some(token) = bearer else {
                    if !needs.is_empty() && self.permits(&Principal::Anonymous, needs) {
                        return Ok(Grants::Principal(Principal::Anonymous));
                    }
                    return Err(unauthorized("authentication required", challenge(None)));
                };
                let access = issuer
                    .verify(token)
                    .map_err(|m| unauthorized(&format!("invalid token: {m}"), challenge(Some("invalid_token"))))?;
                let covered = needs.iter().all(|n| n.actions.iter().all(|a| access.iter().any(|g| g.covers(n, a))));
                if covered {
                    Ok(Grants::Token(access))
                } else {
                    Err(unauthorized("insufficient scope", challenge(Some("insufficient_scope"))))
                }
            }
        }
    }

    fn permits(&self, who: &Principal, needs: &[Scope]) -> bool {
        needs.iter().all(|n| n.actions.iter().all(|a| self.allowed(who, n, a)))
    }

    /// Whether already-authorized `grants` also cover `need` (no challenge on failure).
    pub fn grants_cover(&self, grants: &Grants, need: &Scope) -> bool {
        match grants {
            Grants::All => true,
            Grants::Principal(who) => self.permits(who, std::slice::from_ref(need)),
            Grants::Token(access) => need.actions.iter().all(|a| access.iter().any(|g| g.covers(need, a))),
        }
    }
}

fn unauthorized(message: &str, challenge: String) -> RegistryError {
    RegistryError::Unauthorized { message: message.to_string(), challenge }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        let s = Scope::parse("repository:team/app:pull,push").unwrap();
        assert_eq!(s, Scope::repository("team/app", &["pull", "push"]));
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
        assert_eq!(Scope::parse("registry:catalog:*").unwrap(), Scope::catalog("*"));
        assert!(Scope::parse("nonsense").is_none());
    }
}
