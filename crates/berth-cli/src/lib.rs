//! berth's docker-compatible command line.
//!
//! Every command talks to the daemon only through the Engine API ([`client`]), so what the
//! CLI can do, any Docker client can do. Flags are data: one clap struct per command whose
//! doc comments are the help text; output formats live in [`format`].

pub mod client;
mod commands;
mod context_sync;
mod copy;
pub mod credentials;
mod device_opts;
pub mod format;
mod help;
mod opts;
mod piped;
mod sigproxy;
mod tls;
mod tls_conn;
mod tty;

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};

use commands::{container as ct, distribution as dist, image as im, run, system as sys};

/// The default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "A container engine that speaks Docker")]
struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", env = "DOCKER_HOST")]
    host: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    tls: Option<bool>,
    /// Use TLS and verify the remote
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level (accepted for compatibility)
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateFlags),
    /// Start one or more stopped containers
    Start(ct::StartArgs),
    /// Stop one or more running containers
    Stop(ct::StopArgs),
    /// Restart one or more containers
    Restart(ct::StopArgs),
    /// Kill one or more running containers
    Kill(ct::KillArgs),
    /// Remove one or more containers
    Rm(ct::RmArgs),
    /// List containers
    Ps(ct::PsArgs),
    /// Fetch the logs of a container
    Logs(ct::LogsArgs),
    /// Execute a command in a running container
    Exec(ct::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(ct::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ct::NamesArgs),
    /// Display the running processes of a container
    Top(ct::TopArgs),
    /// Rename a container
    Rename(ct::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(ct::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(ct::NamesArgs),
    /// List port mappings or a specific mapping for the container
    Port(ct::PortArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(ct::StatsArgs),
    /// Update configuration of one or more containers
    Update(ct::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ct::OneArg),
    /// Export a container's filesystem as a tar archive
    Export(ct::ExportArgs),
    /// Create a new image from a container's changes
    Commit(ct::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(ct::CpArgs),
    /// Return low-level information on Docker objects
    Inspect(ct::InspectArgs),
    /// List images
    Images(im::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(im::ImportArgs),
    /// Show the history of an image
    History(im::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(im::TagArgs),
    /// Remove one or more images
    Rmi(im::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(im::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(im::LoadArgs),
    /// Download an image from a registry
    Pull(dist::PullArgs),
    /// Upload an image to a registry
    Push(dist::PushArgs),
    /// Authenticate to a registry
    Login(dist::LoginArgs),
    /// Log out from a registry
    Logout(dist::LogoutArgs),
    /// Search Docker Hub (or a registry named in the term) for images
    Search(dist::SearchArgs),
    /// Show the Docker version information
    Version(sys::FormatArgs),
    /// Display system-wide information
    Info(sys::FormatArgs),
    /// Get real time events from the server
    Events(sys::EventsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(commands::network::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(commands::volume::VolumeCmd),
    /// Build an image from a Dockerfile
    Build(commands::build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Generate the autocompletion script for the specified shell
    Completion(help::CompletionArgs),
    /// Run the berth daemon ('berth daemon --help' for its options)
    Daemon(help::Passthrough),
    /// Run berth's OCI distribution registry ('berth registry --help' for its options)
    Registry(help::Passthrough),
    /// Write berth's man pages to a directory
    #[command(name = "__man", hide = true)]
    Man(help::ManArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCmd {
    Run(run::RunArgs),
    Create(run::CreateFlags),
    Start(ct::StartArgs),
    Stop(ct::StopArgs),
    Restart(ct::StopArgs),
    Kill(ct::KillArgs),
    #[command(visible_alias = "remove")]
    Rm(ct::RmArgs),
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ct::PsArgs),
    Logs(ct::LogsArgs),
    Exec(ct::ExecArgs),
    Attach(ct::AttachArgs),
    Wait(ct::NamesArgs),
    Top(ct::TopArgs),
    Rename(ct::RenameArgs),
    Pause(ct::NamesArgs),
    Unpause(ct::NamesArgs),
    Port(ct::PortArgs),
    Stats(ct::StatsArgs),
    Update(ct::UpdateArgs),
    Diff(ct::OneArg),
    Export(ct::ExportArgs),
    Commit(ct::CommitArgs),
    Cp(ct::CpArgs),
    Inspect(ct::InspectArgs),
    Prune(ct::PruneArgs),
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    #[command(visible_aliases = ["list", "images"])]
    Ls(im::ImagesArgs),
    Import(im::ImportArgs),
    History(im::HistoryArgs),
    Tag(im::TagArgs),
    #[command(visible_alias = "remove")]
    Rm(im::RmiArgs),
    Save(im::SaveArgs),
    Load(im::LoadArgs),
    Pull(dist::PullArgs),
    Push(dist::PushArgs),
    Inspect(ct::InspectArgs),
    Prune(im::ImagePruneArgs),
    Build(commands::build::BuildArgs),
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant, reason = "made once per command line")]
enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(commands::build::BuildArgs),
    /// Remove build cache
    Prune(commands::build::BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCmd {
    /// Show docker disk usage
    Df(sys::DfArgs),
    /// Display system-wide information
    Info(sys::FormatArgs),
    /// Get real time events from the server
    Events(sys::EventsArgs),
    /// Remove unused data
    Prune(sys::SystemPruneArgs),
    /// Verify the image store (digests, layers, references) and optionally repair it
    Check(sys::CheckArgs),
}

fn dispatch(c: &client::Client, cmd: Cmd) -> commands::Exit {
    match cmd {
        Cmd::Completion(a) => help::completion(&a),
        Cmd::Man(a) => help::man_pages(&a),
        // The executable runs these itself when they come first (crates/berth/src/main.rs).
        Cmd::Daemon(_) | Cmd::Registry(_) => {
            Err(anyhow::anyhow!("berth daemon and berth registry take no global options: run them as 'berth daemon …'"))
        }
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => run::run(c, &a),
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => run::create(c, &a),
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => ct::start(c, &a),
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => ct::stop(c, &a, "stop"),
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => ct::stop(c, &a, "restart"),
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => ct::kill(c, &a),
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => ct::rm(c, &a),
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => ct::ps(c, &a),
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => ct::logs(c, &a),
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => ct::exec(c, &a),
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => ct::attach(c, &a),
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => ct::wait(c, &a),
        Cmd::Top(a) | Cmd::Container(ContainerCmd::Top(a)) => ct::top(c, &a),
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => ct::rename(c, &a),
        Cmd::Pause(a) | Cmd::Container(ContainerCmd::Pause(a)) => ct::simple(c, &a, "pause"),
        Cmd::Unpause(a) | Cmd::Container(ContainerCmd::Unpause(a)) => ct::simple(c, &a, "unpause"),
        Cmd::Port(a) | Cmd::Container(ContainerCmd::Port(a)) => ct::port(c, &a),
        Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => ct::stats(c, &a),
        Cmd::Update(a) | Cmd::Container(ContainerCmd::Update(a)) => ct::update(c, &a),
        Cmd::Diff(a) | Cmd::Container(ContainerCmd::Diff(a)) => ct::diff(c, &a),
        Cmd::Export(a) | Cmd::Container(ContainerCmd::Export(a)) => ct::export(c, &a),
        Cmd::Commit(a) | Cmd::Container(ContainerCmd::Commit(a)) => ct::commit(c, &a),
        Cmd::Cp(a) | Cmd::Container(ContainerCmd::Cp(a)) => ct::cp(c, &a),
        Cmd::Inspect(a) => ct::inspect(c, &a, None),
        Cmd::Container(ContainerCmd::Inspect(a)) => ct::inspect(c, &a, Some("container")),
        Cmd::Container(ContainerCmd::Prune(a)) => ct::prune(c, &a),
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => im::images(c, &a),
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => im::import(c, &a),
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => im::history(c, &a),
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => im::tag(c, &a),
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => im::rmi(c, &a),
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => im::save(c, &a),
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => im::load(c, &a),
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => dist::pull(c, &a),
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => dist::push(c, &a),
        Cmd::Login(a) => dist::login(c, &a),
        Cmd::Logout(a) => dist::logout(c, &a),
        Cmd::Search(a) => dist::search(c, &a),
        Cmd::Image(ImageCmd::Inspect(a)) => ct::inspect(c, &a, Some("image")),
        Cmd::Image(ImageCmd::Prune(a)) => im::prune(c, &a),
        Cmd::Version(a) => sys::version(c, &a),
        Cmd::Info(a) | Cmd::System(SystemCmd::Info(a)) => sys::info(c, &a),
        Cmd::Events(a) | Cmd::System(SystemCmd::Events(a)) => sys::events(c, &a),
        Cmd::System(SystemCmd::Df(a)) => sys::df(c, &a),
        Cmd::System(SystemCmd::Prune(a)) => sys::prune(c, &a),
        Cmd::System(SystemCmd::Check(a)) => sys::check(c, &a),
        Cmd::Network(n) => commands::network::run(c, n),
        Cmd::Volume(v) => commands::volume::run(c, v),
        Cmd::Build(a) | Cmd::Image(ImageCmd::Build(a)) | Cmd::Builder(BuilderCmd::Build(a)) => {
            commands::build::build(c, &a)
        }
        Cmd::Builder(BuilderCmd::Prune(a)) => commands::build::builder_prune(c, &a),
    }
}

/// Everything after the image of `run` and `create` is the container's command, as with
/// the docker CLI (pflag without interspersed flags): `berth run --entrypoint sh IMAGE -c
/// 'cmd'` runs `sh -c cmd` rather than taking `-c` for `--cpu-shares`. A `--` goes in
/// after the image, so clap parses none of what follows as berth's flags.
fn end_flags_at_image(mut args: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut cur = &root;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            break;
        }
        let takes_value = |arg: &clap::Arg| arg.get_action().takes_values() && !arg.is_require_equals_set();
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && cur.get_arguments().any(|x| x.get_long() == Some(long) && takes_value(x)) {
                i += 1;
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                if cur.get_arguments().any(|x| x.get_short() == Some(c) && takes_value(x)) {
                    if at + c.len_utf8() == shorts.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else if let Some(sub) = cur.find_subcommand(a) {
            cur = sub;
        } else {
            if matches!(cur.get_name(), "run" | "create") {
                args.insert(i + 1, "--".to_string());
            }
            break;
        }
        i += 1;
    }
    args
}

/// Runs the CLI with `args` (including the program name) and returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let args = end_flags_at_image(args);
    use clap::FromArgMatches;
    let cli = match help::command().try_get_matches_from(&args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            // Nowhere to say that the usage could not be written; the exit code still says it.
            let _ = e.print();
            return code;
        }
    };
    let mut host = cli.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_string());
    if host.starts_with('/') {
        host = format!("unix://{host}");
    }
    let mut c = client::Client::new(&host);
    if host.starts_with("tcp://") {
        let flags = tls::TlsFlags {
            tls: cli.tls,
            tlsverify: cli.tlsverify,
            tlscacert: cli.tlscacert.clone(),
            tlscert: cli.tlscert.clone(),
            tlskey: cli.tlskey.clone(),
        };
        match tls::client_config(&flags) {
            Ok(t) => c.tls = t,
            Err(e) => {
                eprintln!("berth: {e}");
                return 1;
            }
        }
    }
    match dispatch(&c, cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::end_flags_at_image;

    fn split(line: &str) -> Vec<String> {
        end_flags_at_image(line.split(' ').map(String::from).collect())
    }

    #[test]
    fn what_follows_the_image_is_the_containers() {
        assert_eq!(
            split("berth run --entrypoint sh busybox -c x").join(" "),
            "berth run --entrypoint sh busybox -- -c x"
        );
        assert_eq!(
            split("berth -H unix:///s run -e A=1 -it busybox sh").join(" "),
            "berth -H unix:///s run -e A=1 -it busybox -- sh"
        );
        assert_eq!(
            split("berth container create -eA=1 --name=n busybox --rm").join(" "),
            "berth container create -eA=1 --name=n busybox -- --rm"
        );
        assert_eq!(split("berth run -v /a:/b -p 80:80 busybox").join(" "), "berth run -v /a:/b -p 80:80 busybox --");
        // Nothing else changes.
        assert_eq!(split("berth run -- busybox -c").join(" "), "berth run -- busybox -c");
        assert_eq!(split("berth exec -it c sh -c x").join(" "), "berth exec -it c sh -c x");
        assert_eq!(split("berth --tls run busybox -d").join(" "), "berth --tls run busybox -- -d");
    }

    #[test]
    fn the_split_parses() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from(split("berth run --entrypoint sh busybox -c echo")).unwrap();
        let super::Cmd::Run(r) = cli.cmd else { panic!("not run") };
        assert_eq!(r.create.image, "busybox");
        assert_eq!(r.create.command, ["-c", "echo"]);
        assert!(super::Cli::try_parse_from(split("berth run busybox")).is_ok());
    }
}
