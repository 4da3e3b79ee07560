//! Lexical path cleaning, one copy for the places that need it (Dockerfile paths, bind
//! mount destinations, archive paths): it never looks at a filesystem.

/// `p` as an absolute, lexically clean path: empty and `.` components dropped, `..` takes
/// one off and stops at the root (`a/./b/../c` and `/../a/c` are both `/a/c`).
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::clean_abs;

    #[test]
    fn cleaning_is_lexical_and_stays_under_the_root() {
        assert_eq!(clean_abs("/a/./b/../c"), "/a/c");
        assert_eq!(clean_abs("a//b/"), "/a/b");
        assert_eq!(clean_abs("/../../x"), "/x");
        assert_eq!(clean_abs(""), "/");
        assert_eq!(clean_abs("/.."), "/");
    }
}
