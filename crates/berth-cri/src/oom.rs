//! OOM score adjustments kubelet asks for, restricted to what this daemon may set.
//!
//! kubelet asks -998 for a pod's holder and scores by QoS class for containers. Lowering a
//! score below one's own needs CAP_SYS_RESOURCE, which nested and sandboxed nodes (this one
//! among them) do not grant: the start would fail. As containerd's `restrict_oom_score_adj`,
//! a score below the daemon's own is raised to it rather than failing the pod.

/// What kubelet asks for a pod's holder (containerd's default too).
pub const SANDBOX_OOM_SCORE_ADJ: i64 = -998;

/// `asked`, raised to `own` when below it and kept within the kernel's range.
pub fn restrict_to(asked: i64, own: i64) -> i64 {
    asked.clamp(own.clamp(-1000, 1000), 1000)
}

/// `asked`, restricted to this process's own score.
pub fn restrict(asked: i64) -> i64 {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    restrict_to(asked, own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_below_the_daemons_own_are_raised_to_it() {
        assert_eq!(restrict_to(-998, 0), 0);
        assert_eq!(restrict_to(-998, -999), -998);
        assert_eq!(restrict_to(500, 0), 500);
        assert_eq!(restrict_to(2000, 0), 1000);
        assert_eq!(restrict_to(-5, -1000), -5);
    }
}
