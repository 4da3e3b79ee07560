//! `GET /token?service=&scope=…`: the token endpoint of bearer-token mode.
//!
//! Credentials come as `Authorization: Basic` and are checked against htpasswd; wrong ones
//! are `401`. Without credentials the caller is anonymous, which is only accepted when
//! `anonymous_pull` is on (else `401` with a Basic challenge, which is what makes `docker
//! login` prompt). Each requested scope (the `scope` parameter may repeat, and may hold
//! several space-separated scopes) is granted as far as the policy in [`crate::auth`]
//! allows; scopes with nothing granted are left out. The answer is Docker's:
//! `{"token","access_token","expires_in","issued_at"}`. The `service` parameter is not
//! checked: the token's audience is always this registry's service.

use crate::Registry;
use crate::auth::token::rfc3339;
use crate::auth::{Mode, Principal, Scope, htpasswd};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body, Query};
use http::{HeaderMap, Response, StatusCode, header};

pub async fn get(reg: &Registry, headers: &HeaderMap, query: &Query) -> Result<Response<Body>> {
    let Mode::Token(users, issuer) = &reg.auth.mode else {
        return Err(RegistryError::api(ErrorCode::Unsupported, "token auth is not enabled"));
    };
    let challenge = format!("Basic realm=\"{}\"", reg.auth.basic_realm);
    let creds = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(htpasswd::parse_basic);
    let who = match creds {
        Some((user, pass)) if users.verify(&user, &pass).await => Principal::User(user),
        Some(_) => {
            return Err(RegistryError::Unauthorized { message: "invalid username or password".into(), challenge });
        }
        None if reg.auth.anonymous_pull => Principal::Anonymous,
        None => {
            return Err(RegistryError::Unauthorized { message: "authentication required".into(), challenge });
        }
    };
    let grants: Vec<Scope> = query
        .get_all("scope")
        .flat_map(str::split_whitespace)
        .filter_map(Scope::parse)
        .map(|s| reg.auth.grant(&who, &s))
        .filter(|g| !g.actions.is_empty())
        .collect();
    let subject = match &who {
        Principal::User(u) => u.as_str(),
        Principal::Anonymous => "",
    };
    let t = issuer.issue(subject, &grants);
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({
            "token": t.token,
            "access_token": t.token,
            "expires_in": t.expires_in,
            "issued_at": rfc3339(t.issued_at),
        }),
    ))
}
