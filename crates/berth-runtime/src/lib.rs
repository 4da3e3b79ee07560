pub mod seccomp;
pub mod spec;
