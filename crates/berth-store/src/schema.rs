//! The metadata database's schema: one table of buckets, and the buckets berth keeps.
//!
//! ```sql
//! CREATE TABLE meta    (key TEXT PRIMARY KEY, value TEXT NOT NULL);   -- 'schema_version'
//! CREATE TABLE records (bucket TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
//!                       PRIMARY KEY (bucket, key)) WITHOUT ROWID;
//! ```
//!
//! Each record is one JSON document. Records gain fields compatibly (readers default what is
//! missing); a change that is not compatible bumps [`SCHEMA_VERSION`] and adds a step to
//! [`MIGRATIONS`], which the database runs in order inside one transaction at open.
//!
//! | bucket | key | value |
//! |---|---|---|
//! | [`IMAGES`] | image ID (`sha256:…`) | image record (berth-image): created time, parent, last tag time; the config itself is a blob in the content store |
//! | [`REFS`] | normalized reference (`docker.io/library/busybox:latest`, or `…@sha256:…`) | image ID as a JSON string |
//! | [`CONTAINERS`] | container ID | container record (berth-container): config, host config, state, name |
//! | [`VOLUMES`] | volume name | volume record |
//! | [`NETWORKS`] | network ID | network record |
//! | [`DISTRIBUTION`] | layer diff ID (`sha256:…`) | where the layer lives remotely (berth-distribution's `metadata`): a list of `{digest, media_type, size, registry, repository}` |
//! | [`BUILD_CACHE`] | step cache key bound to its parent image's ID (`sha256:…`, see berth-builder's `cache`) | cache record: the image the step produced, created and last-used times |
//! | [`BUILD_LAYERS`] | COPY/ADD content key (`sha256:…`, see berth-builder's `cache`) | the layer's diff ID |

pub const SCHEMA_VERSION: i64 = 1;

pub const IMAGES: &str = "images";
pub const REFS: &str = "refs";
pub const CONTAINERS: &str = "containers";
pub const VOLUMES: &str = "volumes";
pub const NETWORKS: &str = "networks";
pub const DISTRIBUTION: &str = "distribution";
pub const BUILD_CACHE: &str = "build_cache";
pub const BUILD_LAYERS: &str = "build_layers";

/// SQL that takes the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the initial schema.
    "CREATE TABLE IF NOT EXISTS records (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bucket, key)
     ) WITHOUT ROWID;",
];
