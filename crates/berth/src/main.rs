//! `berth`: `berth daemon …` runs the daemon, `berth registry …` the registry; everything else is the docker-compatible CLI.

mod daemon;
mod logging;
mod registry;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let help = ["--help".to_string()];
    match (args.get(1).map(String::as_str), args.get(2).map(String::as_str)) {
        (Some("daemon"), _) => std::process::exit(daemon::main(&args[2..])),
        (Some("registry"), _) => std::process::exit(registry::main(&args[2..])),
        // `berth help daemon`: the daemon's own options, not the CLI's placeholder.
        (Some("help"), Some("daemon")) => std::process::exit(daemon::main(&help)),
        (Some("help"), Some("registry")) => std::process::exit(registry::main(&help)),
        _ => {}
    }
    std::process::exit(berth_cli::main(args));
}

/// Subscribes to SIGTERM and SIGINT now (call it inside the runtime, before announcing that
/// the server listens: a signal sent as soon as that line appears then is not lost between
/// tokio installing its handler and a later subscription); the future ends at either. A
/// signal that cannot be subscribed to is simply not waited for.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => drop(s.recv().await),
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(term) => {}
            () = wait(int) => {}
        }
    }
}
