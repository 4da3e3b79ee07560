//! The `filters` query parameter: a JSON map from filter name to accepted values.
//!
//! Clients send either the current form `{"status":["running"]}` or the old one
//! `{"status":{"running":true}}`; both are accepted.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(s: &str) -> Result<Filters, String> {
        // Go clients send `null` for no filters; dockerd reads it as none.
        if s.trim().is_empty() || s.trim() == "null" {
            return Ok(Filters::default());
        }
        let v: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("invalid filters: {e}"))?;
        let obj = v.as_object().ok_or_else(|| "invalid filters: not an object".to_string())?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let vals = match v {
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                serde_json::Value::Object(m) => {
                    m.iter().filter(|(_, on)| on.as_bool().unwrap_or(false)).map(|(k, _)| k.clone()).collect()
                }
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(format!("invalid filters: bad value for {k}")),
            };
            out.insert(k.clone(), vals);
        }
        Ok(Filters(out))
    }

    /// Rejects filter names the endpoint does not know, as Docker does.
    pub fn check_names(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!("invalid filter '{k}'"));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_empty())
    }

    /// True when the filter is absent or any of its values satisfies `pred`.
    pub fn any_or_absent(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(v) if v.is_empty() => true,
            Some(v) => v.iter().any(|x| pred(x)),
        }
    }

    /// Docker's `filters.Args.Match`: true when the filter is absent, or a value equals
    /// `source` or is a regular expression (Go's syntax, unanchored) that finds a match in it.
    /// A value that is not a valid expression matches only itself, as in dockerd. The regex
    /// engine runs in time linear in its input.
    pub fn matches_regex(&self, key: &str, source: &str) -> bool {
        self.any_or_absent(key, |v| v == source || regex::Regex::new(v).is_ok_and(|re| re.is_match(source)))
    }

    /// The `label=` filter: every value (`key` or `key=value`) must match.
    pub fn labels_match(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(want.as_str()),
        })
    }

    /// The label filters of the prune endpoints, as dockerd applies them: every `label=`
    /// value must match, and `label!=` values exclude what matches all of them.
    pub fn prune_labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels_match("label", labels) && !(self.has("label!") && self.labels_match("label!", labels))
    }

    /// The `until=` filter of the prune endpoints (nanoseconds since the epoch): what was
    /// created after it is kept. At most one is allowed.
    pub fn prune_until(&self, now: i128) -> Result<Option<i128>, String> {
        match self.get("until") {
            [] => Ok(None),
            [u] => crate::time::parse_time_arg(u, now)
                .map(Some)
                .ok_or_else(|| format!("failed to parse value as time or duration: \"{u}\"")),
            _ => Err("more than one until filter specified".to_string()),
        }
    }

    /// Encodes the filters the way the current docker CLI sends them.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.0.entry(key.to_string()).or_default().push(value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_label_filters_as_dockerd() {
        let labels: BTreeMap<String, String> = [("keep".to_string(), "yes".to_string())].into();
        let none = BTreeMap::new();
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(!f(r#"{"label!":["keep"]}"#).prune_labels_match(&labels));
        assert!(f(r#"{"label!":["keep"]}"#).prune_labels_match(&none));
        assert!(f(r#"{"label!":["keep=no"]}"#).prune_labels_match(&labels));
        // Excluded only when every label! value matches.
        assert!(f(r#"{"label!":["keep","other"]}"#).prune_labels_match(&labels));
        assert!(f(r#"{"label":["keep=yes"]}"#).prune_labels_match(&labels));
        assert!(!f(r#"{"label":["keep"]}"#).prune_labels_match(&none));
        assert!(f(r#"{"until":["1","2"]}"#).prune_until(0).is_err());
        assert_eq!(f(r#"{"until":["10"]}"#).prune_until(0), Ok(Some(10_000_000_000)));
    }

    #[test]
    fn name_filters_are_unanchored_regexes() {
        let mut f = Filters::default();
        f.add("name", "^web-[0-9]+$");
        assert!(f.matches_regex("name", "web-12"));
        assert!(!f.matches_regex("name", "web-x"));
        let mut f = Filters::default();
        f.add("name", "eb");
        assert!(f.matches_regex("name", "web"));
        let mut f = Filters::default();
        f.add("name", "a(");
        assert!(f.matches_regex("name", "a("), "an invalid expression matches itself");
        assert!(!f.matches_regex("name", "xa(y"));
        assert!(Filters::default().matches_regex("name", "anything"));
        assert_eq!(Filters::parse("null").unwrap(), Filters::default());
    }

    #[test]
    fn both_encodings_parse() {
        let a = Filters::parse(r#"{"status":["running","exited"]}"#).unwrap();
        let b = Filters::parse(r#"{"status":{"running":true,"exited":true}}"#).unwrap();
        assert_eq!(a.get("status").len(), 2);
        assert_eq!(b.get("status").len(), 2);
        assert!(Filters::parse("[").is_err());
        assert!(a.check_names(&["name"]).is_err());
    }

    #[test]
    fn labels() {
        let f = Filters::parse(r#"{"label":["a","b=2"]}"#).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        l.insert("b".to_string(), "2".to_string());
        assert!(f.labels_match("label", &l));
        l.insert("b".to_string(), "3".to_string());
        assert!(!f.labels_match("label", &l));
    }
}
