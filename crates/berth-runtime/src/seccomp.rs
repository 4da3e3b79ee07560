//! Seccomp profiles (placeholder being written).
