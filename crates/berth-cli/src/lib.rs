//! The docker-compatible CLI.

pub fn main(args: Vec<String>) -> i32 {
    eprintln!("berth: the CLI is not built yet ({} args)", args.len());
    1
}
