//! The metadata database: buckets of JSON records in SQLite (WAL).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
use crate::{Result, StoreError};

pub struct Db {
    conn: Mutex<Connection>,
}

/// Writes made together: they all happen or none does.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    pub fn put<T: Serialize>(&self, bucket: &str, key: &str, value: &T) -> Result<()> {
        put(&self.tx, bucket, key, value)
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.tx.execute("DELETE FROM records WHERE bucket = ?1 AND key = ?2", params![bucket, key])?;
        Ok(())
    }
}

fn put<T: Serialize>(conn: &Connection, bucket: &str, key: &str, value: &T) -> Result<()> {
    let json = serde_json::to_string(value).map_err(|e| StoreError::Record {
        bucket: bucket.into(),
        key: key.into(),
        source: e,
    })?;
    conn.execute(
        "INSERT INTO records (bucket, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
        params![bucket, key, json],
    )?;
    Ok(())
}

/// The database holds containers' environments (secrets among them): root's alone, 0600,
/// with its WAL and shared-memory files (SQLite gives those the database's mode, but ones
/// left by an older berth are fixed too).
fn private_files(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(|e| StoreError::io(format!("setting the mode of {}", p.display()), e))?,
        }
    }
    Ok(())
}

impl Db {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        private_files(path)?;
        let mut conn = Connection::open(path)?;
        // WAL with NORMAL sync: a killed process never loses a committed transaction, and a
        // power cut can lose only the last few, never corrupt the file.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")?;
        let version: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "metadata database {} has schema version {version}, newer than this berth ({SCHEMA_VERSION}); refusing to touch it",
                path.display()
            )));
        }
        if version < SCHEMA_VERSION {
            let tx = conn.transaction()?;
            for step in &MIGRATIONS[version as usize..SCHEMA_VERSION as usize] {
                tx.execute_batch(step)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![SCHEMA_VERSION.to_string()],
            )?;
            tx.commit()?;
        }
        Ok(Db { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent; keep going.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn put<T: Serialize>(&self, bucket: &str, key: &str, value: &T) -> Result<()> {
        put(&self.conn(), bucket, key, value)
    }

    pub fn get<T: DeserializeOwned>(&self, bucket: &str, key: &str) -> Result<Option<T>> {
        let conn = self.conn();
        let v: Option<String> = conn
            .query_row("SELECT value FROM records WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| r.get(0))
            .optional()?;
        v.map(|s| {
            serde_json::from_str(&s).map_err(|e| StoreError::Record {
                bucket: bucket.into(),
                key: key.into(),
                source: e,
            })
        })
        .transpose()
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.conn().execute("DELETE FROM records WHERE bucket = ?1 AND key = ?2", params![bucket, key])?;
        Ok(())
    }

    /// Every record of a bucket. A record that no longer parses is reported, not skipped,
    /// so damage is never silent.
    pub fn list<T: DeserializeOwned>(&self, bucket: &str) -> Result<Vec<(String, T)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT key, value FROM records WHERE bucket = ?1 ORDER BY key")?;
        let rows = stmt.query_map(params![bucket], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row?;
            let value = serde_json::from_str(&v).map_err(|e| StoreError::Record {
                bucket: bucket.into(),
                key: k.clone(),
                source: e,
            })?;
            out.push((k, value));
        }
        Ok(out)
    }

    /// Runs `f` in one transaction; it commits only if `f` succeeds.
    pub fn batch<R>(&self, f: impl FnOnce(&Batch<'_>) -> Result<R>) -> Result<R> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let b = Batch { tx };
        let r = f(&b)?;
        b.tx.commit()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_batches_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        db.put("b", "k1", &vec![1, 2, 3]).unwrap();
        assert_eq!(db.get::<Vec<i32>>("b", "k1").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(db.get::<Vec<i32>>("b", "nope").unwrap(), None);

        let r: Result<()> = db.batch(|b| {
            b.put("b", "k2", &1)?;
            Err(StoreError::Invalid("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(db.get::<i32>("b", "k2").unwrap(), None, "failed batch must not commit");

        db.batch(|b| {
            b.put("b", "k2", &2)?;
            b.delete("b", "k1")
        })
        .unwrap();
        let all: Vec<(String, i32)> = db.list("b").unwrap();
        assert_eq!(all, vec![("k2".to_string(), 2)]);
        drop(db);
        // Reopening keeps the data and does not re-run migrations destructively.
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        assert_eq!(db.get::<i32>("b", "k2").unwrap(), Some(2));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berth.db");
        drop(Db::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'", []).unwrap();
        drop(c);
        let err = Db::open(&p).err().unwrap();
        assert!(err.to_string().contains("newer than this berth"));
    }
}
