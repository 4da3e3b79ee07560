//! Container names: validation and the generated `adjective_surname` names Docker users know.

use rand::RngExt;

// Our own short lists; any pleasant pair will do. Surnames are scientists and engineers.
const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ardent", "bold", "brave", "bright", "calm", "candid", "clever", "cosmic", "crisp", "daring",
    "deft", "eager", "earnest", "fervent", "fond", "gentle", "glad", "grand", "happy", "hardy", "honest", "humble",
    "jolly", "keen", "kind", "lucid", "lively", "loyal", "merry", "mellow", "modest", "nimble", "noble", "patient",
    "placid", "polite", "proud", "quiet", "quick", "rapid", "serene", "sharp", "steady", "sunny", "swift", "tender",
    "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "boole",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "galois",
    "gauss",
    "goodall",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "ramanujan",
    "ritchie",
    "shannon",
    "sinoussi",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wiles",
    "wozniak",
    "yalow",
];

/// A random `adjective_surname` name. The caller retries on a clash.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let a = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let s = SURNAMES[rng.random_range(0..SURNAMES.len())];
    format!("{a}_{s}")
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional
/// leading slash that is not part of the name.
pub fn validate_container_name(name: &str) -> Result<&str, String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            n.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        }
        _ => false,
    };
    if ok { Ok(n) } else { Err(format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..20 {
            let n = generate();
            assert!(validate_container_name(&n).is_ok(), "{n}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(validate_container_name("/web"), Ok("web"));
        assert!(validate_container_name("a").is_err());
        assert!(validate_container_name("-web").is_err());
        assert!(validate_container_name("we b").is_err());
        assert!(validate_container_name("a/b").is_err());
    }
}
