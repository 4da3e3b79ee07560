//! Predefined build args and the "not consumed" warning.

use std::collections::BTreeSet;

use berth_dockerfile::build_args::{PROXY_ARGS, declared, is_predefined, unused, unused_warning};
use berth_dockerfile::parse;

#[test]
fn proxy_args_are_predefined_in_both_cases() {
    assert_eq!(PROXY_ARGS.len(), 10);
    for name in ["HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        assert!(is_predefined(name), "{name}");
    }
    assert!(!is_predefined("Http_Proxy"));
    assert!(!is_predefined("VERSION"));
}

#[test]
fn unused_build_args_warning() {
    let df = parse("ARG BASE=alpine\nFROM $BASE\nARG VERSION\nFROM scratch\nARG A=1 B\n").unwrap();
    let consumed = declared(&df);
    assert_eq!(consumed, BTreeSet::from(["BASE", "VERSION", "A", "B"].map(String::from)));

    let provided = ["VERSION", "foo", "HTTP_PROXY", "bar", "foo"];
    let left = unused(provided, &consumed);
    assert_eq!(left, vec!["bar", "foo"]);
    assert_eq!(unused_warning(&left).unwrap(), "[Warning] One or more build-args [bar foo] were not consumed");
    assert_eq!(unused_warning(&[]), None);
}
