//! Block I/O limits per device (`--device-read-bps`, `--device-write-bps`,
//! `--device-read-iops`, `--device-write-iops`, `--blkio-weight-device`): the host paths
//! become the major:minor numbers the kernel takes. The numbers are looked up again at every
//! start (a disk can come back under other numbers after a reboot); create looks them up
//! once to refuse a path that is not a block device before anything exists.

use berth_api::models::HostConfig;
use berth_cgroups::{BlockIoResources, BlockIoSupport, ThrottleDevice, WeightDevice};

use crate::{ContainerError, Result};

fn invalid(s: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(s.into())
}

/// The major and minor numbers of the block device at `path` (symlinks followed, as
/// `/dev/disk/by-id/…` are).
pub(crate) fn device_numbers(path: &str) -> Result<(i64, i64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| invalid(format!("stat {path}: {}", go_text(&e))))?;
    if !md.file_type().is_block_device() {
        return Err(invalid(format!("{path} is not a block device")));
    }
    Ok((rustix::fs::major(md.rdev()) as i64, rustix::fs::minor(md.rdev()) as i64))
}

/// An I/O error as Go prints it (`no such file or directory`), for dockerd's wording.
fn go_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// The OCI `blockIO` for a host config, or `None` when it sets nothing.
pub(crate) fn resources(h: &HostConfig) -> Result<Option<BlockIoResources>> {
    let throttles = |list: &Option<Vec<berth_api::models::ThrottleDevice>>| -> Result<Vec<ThrottleDevice>> {
        list.iter()
            .flatten()
            .map(|t| device_numbers(&t.path).map(|(major, minor)| ThrottleDevice { major, minor, rate: t.rate }))
            .collect()
    };
    let b = BlockIoResources {
        weight: (h.blkio_weight > 0).then_some(h.blkio_weight),
        weight_device: h
            .blkio_weight_device
            .iter()
            .flatten()
            .map(|w| device_numbers(&w.path).map(|(major, minor)| WeightDevice { major, minor, weight: w.weight }))
            .collect::<Result<_>>()?,
        throttle_read_bps_device: throttles(&h.blkio_device_read_bps)?,
        throttle_write_bps_device: throttles(&h.blkio_device_write_bps)?,
        throttle_read_iops_device: throttles(&h.blkio_device_read_iops)?,
        throttle_write_iops_device: throttles(&h.blkio_device_write_iops)?,
    };
    Ok((b != BlockIoResources::default()).then_some(b))
}

/// dockerd's block I/O checks at create, with its words, except that what this host cannot
/// apply is refused rather than discarded with a warning (a limit asked for and silently
/// not applied is worse than none asked for). A plain `--blkio-weight` the kernel has no
/// file for keeps dockerd's warning: it is advisory to the scheduler anyway.
pub(crate) fn check(h: &HostConfig, host: BlockIoSupport, warnings: &mut Vec<String>) -> Result<()> {
    if h.blkio_weight > 0 && !host.weight {
        warnings.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into(),
        );
    }
    if h.io_maximum_bandwidth != 0 || h.io_maximum_iops != 0 {
        return Err(invalid("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"));
    }
    let set = |l: &Option<Vec<berth_api::models::ThrottleDevice>>| l.as_ref().is_some_and(|l| !l.is_empty());
    if h.blkio_weight_device.as_ref().is_some_and(|l| !l.is_empty()) {
        if !host.weight_device {
            return Err(invalid("Your kernel does not support Block I/O weight_device or the cgroup is not mounted"));
        }
        for w in h.blkio_weight_device.iter().flatten() {
            // 0 removes a device's weight, as the docker CLI allows.
            if w.weight != 0 && !(10..=1000).contains(&w.weight) {
                return Err(invalid(format!("invalid weight for device: {}:{}", w.path, w.weight)));
            }
        }
    }
    for (list, what) in [
        (&h.blkio_device_read_bps, "BPS Block I/O read limit"),
        (&h.blkio_device_write_bps, "BPS Block I/O write limit"),
        (&h.blkio_device_read_iops, "IOPS Block read limit"),
        (&h.blkio_device_write_iops, "IOPS Block write limit"),
    ] {
        if set(list) && !host.throttle {
            return Err(invalid(format!("Your kernel does not support {what} or the cgroup is not mounted")));
        }
    }
    resources(h).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::ThrottleDevice as Limit;

    fn all() -> BlockIoSupport {
        BlockIoSupport { weight: true, weight_device: true, throttle: true }
    }

    #[test]
    fn paths_must_be_block_devices() {
        let h = |path: &str| HostConfig {
            blkio_device_read_bps: Some(vec![Limit { path: path.into(), rate: 1 }]),
            ..Default::default()
        };
        let err = |h| check(&h, all(), &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(err(h("/dev/null")), "/dev/null is not a block device");
        assert_eq!(err(h("/dev/berth-nope")), "stat /dev/berth-nope: no such file or directory");
        assert!(check(&HostConfig::default(), BlockIoSupport::default(), &mut Vec::new()).is_ok());
    }

    #[test]
    fn what_the_host_lacks_is_refused() {
        let h = HostConfig {
            blkio_device_write_iops: Some(vec![Limit { path: "/dev/null".into(), rate: 1 }]),
            ..Default::default()
        };
        let e = check(&h, BlockIoSupport::default(), &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(e, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted");
        let h = HostConfig {
            blkio_weight_device: Some(vec![berth_api::models::WeightDevice { path: "/dev/null".into(), weight: 5 }]),
            ..Default::default()
        };
        let e = check(&h, BlockIoSupport::default(), &mut Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with("Your kernel does not support Block I/O weight_device"), "{e}");
        let e = check(&h, all(), &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(e, "invalid weight for device: /dev/null:5");
        let mut w = Vec::new();
        check(&HostConfig { blkio_weight: 300, ..Default::default() }, BlockIoSupport::default(), &mut w).unwrap();
        assert_eq!(w.len(), 1);
    }
}
