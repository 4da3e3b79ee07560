//! `berth`: `berth daemon …` runs the daemon, `berth registry …` the registry; everything else is the docker-compatible CLI.

mod daemon;
mod registry;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("daemon") {
        std::process::exit(daemon::main(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some("registry") {
        std::process::exit(registry::main(&args[2..]));
    }
    std::process::exit(berth_cli::main(args));
}
