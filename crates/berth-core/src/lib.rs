//! What berth's services agree on, on the floor below them all.
//!
//! The container service and the network service sit side by side: neither depends on the
//! other. What passes between them is described here, and only here:
//! - [`network`]: the contract. The container service calls [`network::Networks`] when a
//!   container starts, stops, is removed, renamed or re-adopted; the network service reads
//!   containers through [`network::Containers`], a slim view ([`network::ContainerView`])
//!   of what networking needs of one. The daemon wires the two together.
//! - [`events`]: the bus every service publishes on, behind `GET /events`.
//! - small helpers both sides need: [`links`] (the `--link name:alias` form) and [`resolv`]
//!   (the host's resolv.conf).
//!
//! This crate holds no service and no state of its own; a type belongs here only if two
//! services must agree on it.

pub mod events;
pub mod links;
pub mod network;
pub mod resolv;
