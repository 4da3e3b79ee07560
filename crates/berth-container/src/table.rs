//! The containers the daemon knows, by ID and by name: loaded from the metadata database at
//! start-up, shared by the container service and, through the network contract
//! ([`berth_core::network::Containers`], see `network.rs`), the network service. It holds
//! records, never a service, so whoever holds it makes no cycle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use berth_api::ids::{PrefixMatch, match_prefix};
use berth_store::db::Db;

use crate::{ContainerError, Entry, Record, Result};

pub struct Table {
    pub(crate) entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Container name → ID.
    pub(crate) names: Mutex<BTreeMap<String, String>>,
    pub(crate) db: Arc<Db>,
}

impl Table {
    /// Every container recorded in `db`.
    pub fn load(db: Arc<Db>) -> Result<Arc<Table>> {
        let mut entries = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (id, rec) in db.list::<Record>(berth_store::schema::CONTAINERS)? {
            names.insert(rec.name.clone(), id.clone());
            entries.insert(id, Entry::new(rec));
        }
        Ok(Arc::new(Table { entries: RwLock::new(entries), names: Mutex::new(names), db }))
    }

    /// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Entry>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get(name_or_id) {
            return Ok(e.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(id) = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(name)
            && let Some(e) = entries.get(id)
        {
            return Ok(e.clone());
        }
        if berth_api::ids::is_id_prefix(name_or_id) {
            match match_prefix(name_or_id, entries.iter().map(|(k, v)| (k.as_str(), v.clone()))) {
                PrefixMatch::One(e) => return Ok(e),
                PrefixMatch::Ambiguous => {
                    return Err(ContainerError::Invalid(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    )));
                }
                PrefixMatch::None => {}
            }
        }
        Err(ContainerError::NotFound(name_or_id.to_string()))
    }

    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Saves a container's record.
    pub(crate) fn persist(&self, e: &Entry) -> Result<()> {
        let r = e.record();
        self.db.put(berth_store::schema::CONTAINERS, &r.id, &r)?;
        Ok(())
    }
}
