//! Docker's `GET /v1/search` over the catalog.

use crate::common::Server;
use serde_json::json;

#[tokio::test]
async fn v1_search_matches_substrings() {
    let s = Server::start().await;
    let c = s.client();
    for repo in ["library/nginx", "team/nginx-proxy", "team/redis"] {
        c.push_image(repo, "latest", repo.as_bytes()).await;
    }
    let r = c.get("/v1/search?q=nginx&n=25").await;
    assert_eq!(r.status, http::StatusCode::OK);
    let j = r.json();
    assert_eq!(j["num_results"], json!(2));
    assert_eq!(j["query"], json!("nginx"));
    assert_eq!(
        j["results"][0],
        json!({"name": "library/nginx", "description": "", "star_count": 0, "is_official": false, "is_automated": false})
    );
    assert_eq!(j["results"][1]["name"], json!("team/nginx-proxy"));

    let j = c.get("/v1/search?q=nginx&n=1&page=2").await.json();
    assert_eq!(j["num_results"], json!(2));
    assert_eq!(j["results"].as_array().unwrap().len(), 1);
    assert_eq!(j["results"][0]["name"], json!("team/nginx-proxy"));
    assert_eq!(c.get("/v1/search?q=postgres").await.json()["results"], json!([]));
    s.stop().await;
}
