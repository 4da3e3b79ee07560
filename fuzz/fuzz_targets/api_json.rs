//! JSON request bodies of the Engine API decoded into berth-api's models, both directly
//! (`serde_json::from_slice`) and the way the daemon's `Req::json` does it (parse to a
//! `Value`, drop `null` members at any depth, `from_value`), plus the `filters` query
//! parameter (`Filters::parse`).
//!
//! Input: one selector byte (which model), then the JSON text.
//! Checks: nothing panics; whatever decodes serializes, and that output decodes to a value
//! that serializes the same (what berth writes, e.g. a container's stored config, it can
//! read back unchanged); `Filters::parse(f.to_json()) == f`.
#![no_main]

use berth_api::filters::Filters;
use berth_api::models::{
    ContainerConfig, ContainerCreateRequest, EndpointSettings, ExecCreateRequest, ExecStartRequest, HealthConfig,
    HostConfig, Mount, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig, UpdateRequest,
    VolumeCreateRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The daemon's `strip_nulls` (private to berth-daemon's http.rs), copied.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(t: &T) {
    let bytes = serde_json::to_vec(t).expect("a decoded model serializes");
    let back: T = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("berth cannot read its own output {}: {e}", String::from_utf8_lossy(&bytes)));
    let again = serde_json::to_vec(&back).unwrap();
    assert!(
        again == bytes,
        "serialize/deserialize changed the value:\n {}\n {}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&again)
    );
}

fn check<T: DeserializeOwned + Serialize + Default>(json: &[u8]) {
    if let Ok(t) = serde_json::from_slice::<T>(json) {
        round_trip(&t);
    }
    // As the daemon's Req::json does it.
    if json.iter().all(u8::is_ascii_whitespace) {
        round_trip(&T::default());
        return;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(json) else { return };
    strip_nulls(&mut v);
    if let Ok(t) = serde_json::from_value::<T>(v) {
        round_trip(&t);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else { return };
    match which % 14 {
        0 => check::<ContainerCreateRequest>(json),
        1 => check::<HostConfig>(json),
        2 => check::<ContainerConfig>(json),
        3 => check::<NetworkingConfig>(json),
        4 => check::<EndpointSettings>(json),
        5 => check::<Mount>(json),
        6 => check::<HealthConfig>(json),
        7 => check::<NetworkCreateRequest>(json),
        8 => check::<NetworkConnectRequest>(json),
        9 => check::<UpdateRequest>(json),
        10 => check::<ExecCreateRequest>(json),
        11 => check::<ExecStartRequest>(json),
        12 => check::<VolumeCreateRequest>(json),
        _ => {
            let Ok(s) = std::str::from_utf8(json) else { return };
            if let Ok(f) = Filters::parse(s) {
                let again = Filters::parse(&f.to_json()).expect("own filters parse");
                assert_eq!(again, f, "filters changed through to_json");
                let _ = f.check_names(&["label", "name", "status"]);
                let _ = f.labels_match("label", &Default::default());
            }
        }
    }
});
