//! Variable substitution as the builder does it: every operator, escaping and quoting.

use std::collections::BTreeSet;

use berth_dockerfile::expand::{Expander, expand, expand_heredoc, expand_split, expand_with_vars, expand_words};

/// NAME=world, EMPTY is set but empty, PATHISH and FILE are for patterns; the rest unset.
fn env(k: &str) -> Option<String> {
    match k {
        "NAME" => Some("world".into()),
        "EMPTY" => Some(String::new()),
        "SPACED" => Some("a  b c".into()),
        "FILE" => Some("archive.tar.gz".into()),
        "PATHISH" => Some("/usr/local/bin/tool".into()),
        "STAR" => Some("\\*".into()),
        _ => None,
    }
}

fn x(s: &str) -> String {
    expand(s, &env, '\\').unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> String {
    expand(s, &env, '\\').unwrap_err().to_string()
}

#[test]
fn plain_and_braced_variables() {
    assert_eq!(x("hello $NAME"), "hello world");
    assert_eq!(x("hello ${NAME}!"), "hello world!");
    assert_eq!(x("${NAME}${NAME}"), "worldworld");
    assert_eq!(x("$NAME_x"), "", "the name runs through letters, digits and _");
    assert_eq!(x("${NAME}_x"), "world_x");
    assert_eq!(x("[$UNSET]"), "[]");
    assert_eq!(x("cost: $5"), "cost: ", "positional parameters are never set");
    assert_eq!(x("$ alone, $. and $/"), "$ alone, $. and $/");
    assert_eq!(x("$"), "$");
}

#[test]
fn default_and_alternative_values() {
    // `:-` replaces unset and empty; `-` only unset.
    assert_eq!(x("${UNSET:-dflt}"), "dflt");
    assert_eq!(x("${EMPTY:-dflt}"), "dflt");
    assert_eq!(x("${NAME:-dflt}"), "world");
    assert_eq!(x("${UNSET-dflt}"), "dflt");
    assert_eq!(x("${EMPTY-dflt}"), "");
    // `:+` gives the word when set and non-empty; `+` when set at all.
    assert_eq!(x("${NAME:+alt}"), "alt");
    assert_eq!(x("${EMPTY:+alt}"), "");
    assert_eq!(x("${UNSET:+alt}"), "");
    assert_eq!(x("${EMPTY+alt}"), "alt");
    assert_eq!(x("${UNSET+alt}"), "");
    // The word is expanded and may be quoted.
    assert_eq!(x("${UNSET:-$NAME}"), "world");
    assert_eq!(x("${UNSET:-${ALSO_UNSET:-deep}}"), "deep");
    assert_eq!(x("${UNSET:-\"two words\"}"), "two words");
    assert_eq!(x("v${NAME:+-${NAME}}.tar"), "v-world.tar");
}

#[test]
fn required_values() {
    assert_eq!(x("${NAME:?must be set}"), "world");
    assert_eq!(x("${EMPTY?only unset fails}"), "");
    assert_eq!(err("${UNSET:?must be set}"), r#"failed to process "${UNSET:?must be set}": UNSET: must be set"#);
    assert_eq!(err("${UNSET?}"), r#"failed to process "${UNSET?}": UNSET: is not allowed to be unset"#);
    assert_eq!(err("${EMPTY:?}"), r#"failed to process "${EMPTY:?}": EMPTY: is not allowed to be empty"#);
}

#[test]
fn prefix_and_suffix_removal() {
    assert_eq!(x("${FILE#*.}"), "tar.gz");
    assert_eq!(x("${FILE##*.}"), "gz");
    assert_eq!(x("${FILE%.*}"), "archive.tar");
    assert_eq!(x("${FILE%%.*}"), "archive");
    assert_eq!(x("${PATHISH##*/}"), "tool");
    assert_eq!(x("${PATHISH%/*}"), "/usr/local/bin");
    assert_eq!(x("${FILE#nomatch}"), "archive.tar.gz");
    assert_eq!(x("${FILE#?r}"), "chive.tar.gz");
    assert_eq!(x("${FILE%}"), "archive.tar.gz");
    assert_eq!(x("${UNSET#x}"), "");
    // Escaped wildcards are literal, also when the pattern comes from a variable.
    assert_eq!(expand("${V#\\*}", &|_| Some("**x".into()), '\\').unwrap(), "*x");
    assert_eq!(expand("${V#$STAR}", &|k| if k == "STAR" { env(k) } else { Some("*y".into()) }, '\\').unwrap(), "y");
    assert!(err("${FILE:#x}").ends_with("unsupported modifier (:#) in substitution"));
    assert!(err("${FILE:%x}").ends_with("unsupported modifier (:%) in substitution"));
}

#[test]
fn pattern_replacement() {
    assert_eq!(x("${PATHISH/\\//:}"), ":usr/local/bin/tool");
    assert_eq!(x("${PATHISH//\\//:}"), ":usr:local:bin:tool");
    assert_eq!(x("${FILE/.*/}"), "archive", "a star matches as much as it can");
    assert_eq!(x("${FILE//a/A}"), "Archive.tAr.gz");
    assert_eq!(x("${FILE/zzz/y}"), "archive.tar.gz");
    assert_eq!(x("${FILE///}"), "archive.tar.gz");
    assert!(err("${FILE//a}").ends_with("syntax error: missing '/' in ${}"));
}

#[test]
fn escaping_keeps_text_literal() {
    assert_eq!(x(r"\$NAME"), "$NAME");
    assert_eq!(x(r"\${NAME}"), "${NAME}");
    assert_eq!(x(r"\\$NAME"), r"\world");
    assert_eq!(x(r"a\ b\c"), "a bc", "the escape character is removed, the next one kept");
    assert_eq!(x(r"trailing\"), "trailing");
    // With the backtick escape, a backslash is an ordinary character.
    assert_eq!(expand(r"C:\dir\`$NAME", &env, '`').unwrap(), r"C:\dir\$NAME");
    assert_eq!(expand(r"C:\$NAME", &env, '`').unwrap(), r"C:\world");
}

#[test]
fn quotes() {
    // Single quotes: nothing is special, quotes removed.
    assert_eq!(x("'$NAME ${UNSET:?x} \\n'"), "$NAME ${UNSET:?x} \\n");
    // Double quotes: variables expand; the escape only works before ", $ and itself.
    assert_eq!(x("\"hi $NAME\""), "hi world");
    assert_eq!(x(r#""\$NAME \"q\" \\ \n""#), r#"$NAME "q" \ \n"#);
    assert_eq!(x(r#""it's""#), "it's");
    assert_eq!(x(r#"'say "hi"'"#), r#"say "hi""#);
    assert_eq!(x(r#"mixed"$NAME"'$NAME'$NAME"#), "mixedworld$NAMEworld");
    assert!(err("'open").ends_with("unexpected end of statement while looking for matching single-quote"));
    assert!(err("\"open").ends_with("unexpected end of statement while looking for matching double-quote"));
}

#[test]
fn syntax_errors() {
    assert!(err("${}").ends_with("syntax error: bad substitution"));
    assert!(err("${:-x}").ends_with("syntax error: bad substitution"));
    assert!(err("${NAME").ends_with("syntax error: missing '}'"));
    assert!(err("${NAME:-x").ends_with("syntax error: missing '}'"));
    assert!(err("${NAME!}").ends_with("unsupported modifier (!) in substitution"));
    assert!(err("${NAME:x}").ends_with("unsupported modifier (:x) in substitution"));
}

#[test]
fn names_used_are_reported_set_or_not() {
    let (out, used) = expand_with_vars("$NAME ${UNSET:-${EMPTY}} '$QUOTED' \\$ESCAPED", &env, '\\').unwrap();
    assert_eq!(out, "world  $QUOTED $ESCAPED");
    assert_eq!(used, BTreeSet::from(["NAME".to_string(), "UNSET".into(), "EMPTY".into()]));

    let mut e = Expander::new(&env, '\\');
    e.word("$NAME").unwrap();
    e.words("$FILE $UNSET").unwrap();
    assert_eq!(e.used().iter().collect::<Vec<_>>(), ["FILE", "NAME", "UNSET"]);
}

#[test]
fn exec_form_words_expand_one_by_one() {
    let words = vec!["$NAME".to_string(), "'$NAME'".into(), "${SPACED}".into()];
    assert_eq!(expand_words(&words, &env, '\\').unwrap(), vec!["world", "$NAME", "a  b c"]);
}

#[test]
fn split_after_expansion() {
    // Unquoted expansions split on whitespace; quoted text never does.
    assert_eq!(expand_split("$SPACED", &env, '\\').unwrap(), vec!["a", "b", "c"]);
    assert_eq!(expand_split("\"$SPACED\" x", &env, '\\').unwrap(), vec!["a  b c", "x"]);
    assert_eq!(expand_split("80/tcp  ${UNSET:-443}", &env, '\\').unwrap(), vec!["80/tcp", "443"]);
    assert_eq!(expand_split(r"a\ b c", &env, '\\').unwrap(), vec!["a b", "c"]);
    assert_eq!(expand_split("\"\" x", &env, '\\').unwrap(), vec!["x"], "empty words vanish");
}

#[test]
fn heredoc_bodies_keep_quotes() {
    let body = "echo \"$NAME\" '$NAME' \\$NAME\n";
    assert_eq!(expand_heredoc(body, &env).unwrap(), "echo \"world\" 'world' $NAME\n");
}

/// Runs `f` on a thread with a small stack, as a regression guard for recursion: without
/// a cap on nesting, deep input overflows this stack and aborts the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 * 1024).spawn(f).expect("spawn").join().expect("no panic")
}

fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "${a:-".repeat(depth), "}".repeat(depth))
}

/// Regression: `ENV X=${a:-${a:-…}}` nested some thousands deep overflowed the daemon's
/// stack in the lexer's recursion and aborted the root daemon.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let max = berth_dockerfile::expand::MAX_NESTING;
    let (ok, too_deep, huge, quoted) = on_small_stack(move || {
        let e = |s: &str| expand(s, &env, '\\').map_err(|e| e.to_string());
        let quoted = format!("{}x{}", "${a:-\"".repeat(100_000), "\"}".repeat(100_000));
        (e(&nested(max, "x")), e(&nested(max + 1, "x")), e(&nested(100_000, "x")), e(&quoted))
    });
    assert_eq!(ok.as_deref(), Ok("x"), "nesting up to the cap still expands");
    for r in [too_deep, huge, quoted] {
        let m = r.expect_err("too deep");
        assert!(m.contains("nested more than 64 levels deep"), "{}", &m[m.len().saturating_sub(200)..]);
    }
}

/// The same lexer runs inside the parser (heredoc markers on RUN, COPY and ADD lines): a
/// deeply nested word there must come back as an answer, not overflow the stack.
#[test]
fn deep_nesting_inside_the_parser_returns() {
    // 10,000 levels stay under Docker's line length, so the parser does lex them.
    let word = nested(10_000, "x");
    assert!(word.len() <= berth_dockerfile::parser::MAX_LINE);
    let df = format!("FROM busybox\nENV X={word}\nRUN echo {word} <<EOF\nbody\nEOF\nCOPY {word} <<EOF /\nbody\nEOF\n");
    let parsed =
        on_small_stack(move || berth_dockerfile::parse(&df).map(|d| d.stages.len()).map_err(|e| e.to_string()));
    // The marker word cannot be lexed, so (as for any such word) no heredoc is read and
    // its body line is taken for an instruction: an error, returned.
    let e = parsed.expect_err("body is not an instruction");
    assert!(e.ends_with("unknown instruction: body"), "{e}");
}

/// Docker's parser refuses a physical line over 65,535 bytes; so does berth's.
#[test]
fn overlong_lines_are_refused_as_docker_does() {
    let long = format!("FROM busybox\nENV X={}\n", "y".repeat(70_000));
    let e = berth_dockerfile::parse(&long).unwrap_err().to_string();
    assert!(e.contains("dockerfile line greater than max allowed size of 65535"), "{e}");
    let fits = format!("FROM busybox\nENV X={}\n", "y".repeat(65_535 - "ENV X=".len()));
    berth_dockerfile::parse(&fits).expect("a line of exactly 65535 bytes is fine");
}
