//! `GET /images/search`: Docker's v1 search API (`/v1/search?q=&n=`) of the registry the
//! term names (`127.0.0.1:5000/busy` searches that registry for `busy`), Docker Hub's index
//! otherwise, with Docker's filters applied on the results.

use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::endpoint::{HUB_DOMAIN, HUB_INDEX};
use crate::http::{ReqBody, read_limited};
use crate::session::{Session, enc, error_of};
use crate::{DistError, Distribution, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// `stars=N`, `is-official=true|false`, `is-automated=true|false`.
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    pub stars: Option<i64>,
    pub is_official: Option<bool>,
    pub is_automated: Option<bool>,
}

/// Splits a search term into the registry it names and the query.
pub fn split_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (crate::endpoint::normalize_domain(first), rest.to_string())
        }
        _ => (HUB_DOMAIN.to_string(), term.to_string()),
    }
}

impl Distribution {
    pub async fn search(
        &self,
        term: &str,
        limit: usize,
        filters: &SearchFilters,
        auth: &AuthConfig,
    ) -> Result<Vec<SearchResult>> {
        if term.trim().is_empty() {
            return Err(DistError::Invalid("term is required".into()));
        }
        let limit = if limit == 0 { 25 } else { limit };
        if limit > 100 {
            return Err(DistError::Invalid(format!("limit {limit} is outside the range of [1, 100]")));
        }
        let (domain, query) = split_term(term);
        let bases: Vec<(String, bool)> = if domain == HUB_DOMAIN {
            vec![(HUB_INDEX.trim_end_matches("/v1/").to_string(), false)]
        } else {
            self.options.endpoints(&domain).into_iter().map(|e| (e.base, e.mirror)).collect()
        };
        let mut last = None;
        for (base, fallible) in bases {
            match self.search_at(&base, &query, limit, auth).await {
                Ok(mut r) => {
                    r.retain(|x| {
                        filters.stars.is_none_or(|s| x.star_count >= s)
                            && filters.is_official.is_none_or(|o| x.is_official == o)
                            && filters.is_automated.is_none_or(|a| x.is_automated == a)
                    });
                    r.truncate(limit);
                    return Ok(r);
                }
                Err(e @ DistError::Unavailable(_)) if fallible => last = last.or(Some(e)),
                Err(e) => return Err(crate::endpoint::explain(last, e)),
            }
        }
        Err(last.unwrap_or_else(|| DistError::Unavailable(format!("no endpoint for {domain}"))))
    }

    async fn search_at(&self, base: &str, query: &str, limit: usize, auth: &AuthConfig) -> Result<Vec<SearchResult>> {
        let mut s = Session::open(self.http.clone(), base, auth, vec!["registry:catalog:search".into()]).await?;
        let url = format!("{}/v1/search?q={}&n={limit}", base.trim_end_matches('/'), enc(query));
        let resp = s.send(Method::GET, &url, HeaderMap::new(), ReqBody::Empty).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp, "searching").await);
        }
        let body = read_limited(resp, 8 << 20).await?;
        let r: Results = serde_json::from_slice(&body)
            .map_err(|e| DistError::Invalid(format!("search results from {base}: {e}")))?;
        Ok(r.results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        assert_eq!(split_term("busybox"), ("docker.io".to_string(), "busybox".to_string()));
        assert_eq!(split_term("127.0.0.1:5000/busy"), ("127.0.0.1:5000".to_string(), "busy".to_string()));
        assert_eq!(split_term("team/app"), ("docker.io".to_string(), "team/app".to_string()));
    }
}
