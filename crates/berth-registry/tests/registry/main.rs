//! Integration tests of berth's registry server, one module per feature, all against a real
//! server on 127.0.0.1 (see `common.rs`).

mod common;

mod anonymous;
mod atomicity;
mod auth_basic;
mod auth_token;
mod base;
mod blobs;
mod gc;
mod manifests;
mod read_only;
mod referrers;
mod search;
mod skopeo;
mod tags_catalog;
mod uploads;
