//! Legacy links (`--link name:alias`): the form both the container service (which records
//! and removes them) and the network service (which resolves them) read.

/// The target and alias of a link (`name:alias`, or Docker's normalized
/// `/name:/parent/alias`; a bare `name` is its own alias).
pub fn link_parts(link: &str) -> (&str, &str) {
    let (target, alias) = link.split_once(':').unwrap_or((link, link));
    let alias = alias.trim_start_matches('/');
    (target.trim_start_matches('/'), alias.rsplit('/').next().unwrap_or(alias))
}

/// The alias a link gives its target.
pub fn link_alias(link: &str) -> &str {
    link_parts(link).1
}

#[cfg(test)]
mod tests {
    #[test]
    fn aliases_of_both_link_forms() {
        assert_eq!(super::link_alias("db:database"), "database");
        assert_eq!(super::link_alias("/db:/web/database"), "database");
        assert_eq!(super::link_alias("db"), "db");
        assert_eq!(super::link_parts("/db:/web/database"), ("db", "database"));
    }
}
