//! `.dockerignore` matching with Docker's rules.

use berth_dockerfile::Ignore;

fn excluded(patterns: &str, path: &str) -> bool {
    Ignore::parse(patterns).matches(path)
}

#[test]
fn plain_names_exclude_whole_subtrees() {
    let ig = Ignore::parse("node_modules\nbuild/\n");
    assert!(ig.matches("node_modules"));
    assert!(ig.matches("node_modules/a/b.js"));
    assert!(ig.matches("build/out.o"));
    assert!(!ig.matches("src/node_modules"), "patterns are anchored at the context root");
    assert!(!ig.matches("node_modules_old"));
    assert!(!ig.matches("buildx"));
}

#[test]
fn single_star_and_question_mark_stay_within_one_directory() {
    assert!(excluded("*.log", "app.log"));
    assert!(!excluded("*.log", "logs/app.log"));
    assert!(excluded("*/*.log", "logs/app.log"));
    assert!(!excluded("*/*.log", "a/b/app.log"));
    assert!(excluded("file?.txt", "file1.txt"));
    assert!(!excluded("file?.txt", "file10.txt"));
    assert!(!excluded("a?b", "a/b"));
    assert!(excluded("temp*", "temporary/x"), "a match on a parent directory counts");
}

#[test]
fn character_classes() {
    assert!(excluded("file[0-9].txt", "file7.txt"));
    assert!(!excluded("file[0-9].txt", "filex.txt"));
    assert!(excluded("file[^0-9].txt", "filex.txt"));
    assert!(excluded("[ab]*", "beta"));
    assert!(excluded("x[\\]]", "x]"));
}

#[test]
fn double_star_spans_directories() {
    let ig = Ignore::parse("**/*.go\n");
    assert!(ig.matches("main.go"), "** also matches no directory at all");
    assert!(ig.matches("cmd/tool/main.go"));
    assert!(!ig.matches("main.gox"));
    assert!(excluded("**/test", "a/b/test/data.txt"));
    assert!(excluded("**/test", "test"));
    assert!(excluded("docs/**", "docs/a/b.md"));
    assert!(excluded("a/**/z", "a/z"));
    assert!(excluded("a/**/z", "a/b/c/z"));
    assert!(!excluded("a/**/z", "b/a/z"));
    assert!(excluded("**", "anything/at/all"));
}

#[test]
fn docker_quirk_double_star_then_plain_text_is_a_suffix_test() {
    // Docker treats `**` + plain text as "path ends with the text".
    assert!(excluded("**foo", "dir/barfoo"));
    assert!(excluded("**.md", "docs/readme.md"));
}

#[test]
fn exceptions_and_last_match_wins() {
    let ig = Ignore::parse("*.md\n!README.md\n");
    assert!(ig.matches("CHANGELOG.md"));
    assert!(!ig.matches("README.md"));

    // A later exclusion overrides an earlier exception.
    let ig = Ignore::parse("*.md\n!README*.md\nREADME-secret.md\n");
    assert!(!ig.matches("README-public.md"));
    assert!(ig.matches("README-secret.md"));

    // An exception for a directory re-includes what is below it.
    let ig = Ignore::parse("vendor\n!vendor/keep\n");
    assert!(ig.matches("vendor/drop/x"));
    assert!(!ig.matches("vendor/keep/x"));
}

#[test]
fn patterns_are_cleaned_and_comments_skipped() {
    let ig = Ignore::parse("# comment\n\n  /abs/path  \n./dot//slashes/../x\n!  ./spaced\n #not-a-comment\n");
    assert!(ig.matches("abs/path/file"));
    assert!(ig.matches("dot/x"));
    assert!(!ig.matches("dot/slashes/x"));
    assert!(ig.matches("#not-a-comment"), "only lines starting with # are comments");
    assert!(!ig.matches("comment"));
    assert!(ig.invalid().is_empty());
    // Paths given to `matches` are cleaned too.
    assert!(ig.matches("./abs//path"));
    assert!(!ig.matches("."));
}

#[test]
fn bom_and_crlf() {
    let ig = Ignore::parse("\u{feff}secret\r\n*.tmp\r\n");
    assert!(ig.matches("secret"));
    assert!(ig.matches("x.tmp"));
}

#[test]
fn malformed_patterns_match_nothing_and_are_reported() {
    let ig = Ignore::parse("[unclosed\nok\ntrailing\\\n!\n[]\n");
    assert!(!ig.matches("[unclosed"));
    assert!(ig.matches("ok"));
    assert_eq!(ig.invalid(), ["[unclosed", "trailing\\", "!", "[]"]);
}

#[test]
fn may_match_below_lets_walkers_prune() {
    let ig = Ignore::parse("vendor\nnode_modules\n!vendor/keep.txt\n!src/*/gen\n");
    assert!(ig.has_exceptions());
    assert!(ig.may_match_below("vendor"));
    assert!(!ig.may_match_below("node_modules"), "no exception can reach below node_modules");
    assert!(ig.may_match_below("src"));
    assert!(ig.may_match_below("src/api"));
    assert!(ig.may_match_below("src/api/gen"));
    assert!(!ig.may_match_below("lib"));
    assert!(!ig.may_match_below("vendor/other"));

    // An exception naming an ancestor re-includes everything below.
    let ig = Ignore::parse("a/b\n!a\n");
    assert!(ig.may_match_below("a/b"));

    // `**` in an exception could reach anywhere.
    let ig = Ignore::parse("*\n!**/*.go\n");
    assert!(ig.may_match_below("deep/dir"));

    // Without exceptions nothing below an excluded directory comes back.
    let ig = Ignore::parse("build\n");
    assert!(!ig.has_exceptions());
    assert!(!ig.may_match_below("build"));
}

#[test]
fn walker_contract_agrees_with_matches() {
    // Whatever may_match_below prunes, matches() must agree is excluded.
    let ig = Ignore::parse("*\n!keep/**\n!src/*.rs\nsrc/secret.rs\n");
    let paths = ["keep/a/b", "src/lib.rs", "src/secret.rs", "other/x", "src/sub/x.rs"];
    for p in paths {
        let parent = p.rsplit_once('/').map_or(".", |(d, _)| d);
        if ig.matches(parent) && !ig.may_match_below(parent) {
            assert!(ig.matches(p), "{p} pruned but not excluded");
        }
    }
    assert!(!ig.matches("keep/a/b"));
    assert!(!ig.matches("src/lib.rs"));
    assert!(ig.matches("src/secret.rs"));
    assert!(ig.matches("other/x"));
    assert!(ig.matches("src/sub/x.rs"));
}
