//! The device flags of `run`/`create`, parsed as the docker CLI parses them: the block I/O
//! limits (`--device-read-bps /dev/sda:1mb`, `--blkio-weight-device /dev/sda:300`), `--gpus`,
//! and CDI device names given to `--device` (`vendor.com/class=name`), which travel as a
//! device request for the `cdi` driver.

use anyhow::{Result, anyhow, bail};
use berth_api::models::{DeviceRequest, ThrottleDevice, WeightDevice};

/// Splits `<path>:<value>` and checks the path is absolute, with the docker CLI's words.
fn path_and_value(s: &str) -> Result<(&str, &str)> {
    let (path, value) = s.split_once(':').filter(|(p, _)| !p.is_empty()).ok_or_else(|| anyhow!("bad format: {s}"))?;
    if !path.starts_with("/dev/") {
        bail!("bad format for device path: {s}");
    }
    Ok((path, value))
}

/// `--device-read-bps`/`--device-write-bps`: a rate in bytes with an optional unit.
pub fn throttle_bps(s: &str) -> Result<ThrottleDevice> {
    let (path, value) = path_and_value(s)?;
    let rate = berth_api::units::parse_ram_bytes(value).ok().filter(|r| *r >= 0).ok_or_else(|| {
        anyhow!(
            "invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
        )
    })?;
    Ok(ThrottleDevice { path: path.into(), rate: rate as u64 })
}

/// `--device-read-iops`/`--device-write-iops`: operations per second.
pub fn throttle_iops(s: &str) -> Result<ThrottleDevice> {
    let (path, value) = path_and_value(s)?;
    let rate = value.parse::<u64>().map_err(|_| {
        anyhow!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(ThrottleDevice { path: path.into(), rate })
}

/// `--blkio-weight-device /dev/sda:300` (10 to 1000, or 0 to leave the default).
pub fn weight_device(s: &str) -> Result<WeightDevice> {
    let (path, value) = path_and_value(s)?;
    let weight = value
        .parse::<u16>()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| anyhow!("invalid weight for device: {s}"))?;
    Ok(WeightDevice { path: path.into(), weight })
}

/// Whether `--device` names a CDI device (`vendor.com/class=name`) rather than a path.
pub fn is_cdi_name(s: &str) -> bool {
    let Some((kind, name)) = s.split_once('=') else { return false };
    let Some((vendor, class)) = kind.split_once('/') else { return false };
    let word = |w: &str, extra: &str| {
        w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.ends_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    word(vendor, "._-") && word(class, "_-") && word(name, "._-:")
}

/// The CDI device names given to `--device`, as one request for the `cdi` driver.
pub fn cdi_request(names: Vec<String>) -> Option<DeviceRequest> {
    (!names.is_empty()).then(|| DeviceRequest { driver: "cdi".into(), device_ids: Some(names), ..Default::default() })
}

/// `--gpus all`, `--gpus 2`, `--gpus '"device=0,1",capabilities=utility'`: always asks for
/// the `gpu` capability, as the docker CLI does.
pub fn gpus(s: &str) -> Result<DeviceRequest> {
    let mut r = DeviceRequest { capabilities: Some(vec![vec!["gpu".into()]]), ..Default::default() };
    for field in csv_fields(s) {
        let (k, v) = field.split_once('=').unwrap_or(("", field.as_str()));
        match k {
            "" if v == "all" => r.count = -1,
            "" | "count" => {
                r.count =
                    if v == "all" { -1 } else { v.parse().map_err(|_| anyhow!("invalid count ({v}) for gpus"))? }
            }
            "device" => r.device_ids = Some(v.split(',').map(String::from).collect()),
            "driver" => r.driver = v.into(),
            "capabilities" => {
                let caps = r.capabilities.get_or_insert_with(Vec::new);
                caps[0].extend(v.split(',').map(String::from));
            }
            "options" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v, ""));
                r.options.get_or_insert_with(Default::default).insert(ok.into(), ov.into());
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if r.count != 0 && r.device_ids.is_some() {
        bail!("cannot set both Count and DeviceIDs on device request");
    }
    Ok(r)
}

/// Comma-separated fields where a double-quoted field may hold commas (`"device=0,1"`).
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().map(|f| f.push(c)).unwrap_or(()),
        }
    }
    out.retain(|f| !f.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_io_flags() {
        assert_eq!(throttle_bps("/dev/sda:1mb").unwrap().rate, 1024 * 1024);
        assert_eq!(throttle_iops("/dev/sda:30").unwrap().rate, 30);
        assert!(throttle_iops("/dev/sda:1mb").unwrap_err().to_string().starts_with("invalid rate for device"));
        assert_eq!(throttle_bps("sda:1").unwrap_err().to_string(), "bad format for device path: sda:1");
        assert_eq!(weight_device("/dev/sda:300").unwrap().weight, 300);
        assert_eq!(weight_device("/dev/sda:5").unwrap_err().to_string(), "invalid weight for device: /dev/sda:5");
    }

    #[test]
    fn device_requests() {
        assert!(is_cdi_name("vendor.com/class=name"));
        assert!(!is_cdi_name("/dev/null"));
        assert!(!is_cdi_name("/dev/a=b"));
        assert_eq!(gpus("all").unwrap().count, -1);
        let r = gpus("\"device=0,1\",capabilities=utility").unwrap();
        assert_eq!(r.device_ids.unwrap(), ["0", "1"]);
        assert_eq!(r.capabilities.unwrap(), [["gpu", "utility"]]);
    }
}
