//! `POST /auth`: checking credentials against a registry, as `docker login` asks.
//!
//! The registry is pinged (`GET /v2/`) without credentials. If it answers `200` it needs
//! none and the login succeeds. A `Basic` challenge is answered by pinging again with the
//! credentials; a `Bearer` one by asking the token endpoint for a token with them (no
//! scope). Either way a `401` means the credentials are wrong.

use http::{HeaderMap, Method, StatusCode};

use crate::auth::AuthConfig;
use crate::endpoint::{HUB_DOMAIN, HUB_REGISTRY, normalize_domain};
use crate::http::{ReqBody, drain};
use crate::session::Session;
use crate::{DistError, Distribution, Result};

impl Distribution {
    /// Checks `auth` against `auth.server_address` (Docker Hub when empty). Returns the
    /// status Docker reports, `Login Succeeded`.
    pub async fn login(&self, auth: &AuthConfig) -> Result<String> {
        let domain = normalize_domain(&auth.server_address);
        if auth.credentials().is_none() {
            return Err(DistError::Invalid(
                "Error: Cannot perform an interactive login from a non TTY device: username is required".into(),
            ));
        }
        let eps = if domain == HUB_DOMAIN {
            vec![crate::endpoint::Endpoint { base: HUB_REGISTRY.into(), mirror: false }]
        } else {
            self.options.endpoints(&domain)
        };
        let mut last = None;
        for ep in eps {
            match self.check(&ep.base, auth).await {
                Ok(()) => return Ok("Login Succeeded".into()),
                Err(e @ DistError::Unavailable(_)) if ep.mirror => last = last.or(Some(e)),
                Err(e) => return Err(crate::endpoint::explain(last, e)),
            }
        }
        Err(last.unwrap_or_else(|| DistError::Unavailable(format!("no endpoint for {domain}"))))
    }

    async fn check(&self, base: &str, auth: &AuthConfig) -> Result<()> {
        let url = format!("{}/v2/", base.trim_end_matches('/'));
        let failed = || DistError::Unauthorized(format!("login attempt to {url} failed with status: 401 Unauthorized"));
        let mut s = match Session::open(self.http.clone(), base, auth, Vec::new()).await {
            Ok(s) => s,
            Err(DistError::Unauthorized(m))
                if m.contains("invalid username or password") || m.starts_with("unauthorized") =>
            {
                return Err(DistError::Unauthorized(format!("Get \"{url}\": {m}")));
            }
            Err(e) => return Err(e),
        };
        if !s.authenticated() {
            return Ok(());
        }
        // Basic: the ping with credentials is the check. (Bearer: the token was the check,
        // and the ping with it must pass as well.)
        let resp = s.send(Method::GET, &url, HeaderMap::new(), ReqBody::Empty).await?;
        let st = resp.status();
        drain(resp).await;
        match st {
            StatusCode::OK => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(failed()),
            st => Err(DistError::Registry(format!("login attempt to {url} failed with status: {st}"))),
        }
    }
}
