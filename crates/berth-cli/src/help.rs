//! The CLI's help as docker lays it out (commands grouped: common, management, the rest,
//! berth's servers), shell completions (`berth completion bash|fish|powershell|zsh`) and man
//! pages, all made from the one clap definition so none can drift from what berth parses.

use std::path::{Path, PathBuf};

use clap::{Args, Command, CommandFactory};

/// What docker lists first, in docker's order.
const COMMON: &[&str] =
    &["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version", "info"];

/// berth's own servers, which run through the same executable.
const SERVERS: &[&str] = &["daemon", "registry"];

/// The CLI's definition, with the top-level help laid out as docker's.
pub(crate) fn command() -> Command {
    let cmd = crate::Cli::command();
    let template = top_template(&cmd);
    cmd.help_template(template)
}

/// The top-level help template: usage, about, the command groups, then the global options.
fn top_template(cmd: &Command) -> String {
    let shown: Vec<&Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    let width = shown.iter().map(|c| c.get_name().len()).max().unwrap_or(0) + 2;
    let group = |title: &str, pick: &dyn Fn(&Command) -> bool| {
        let mut picked: Vec<&&Command> = shown.iter().filter(|c| pick(c)).collect();
        let rank = |c: &Command| COMMON.iter().position(|n| *n == c.get_name());
        picked.sort_by_key(|c| (rank(c), c.get_name().to_string()));
        let mut s = format!("{title}:\n");
        for c in picked {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            // Braces are the template's own syntax.
            let about = about.replace('{', "(").replace('}', ")");
            s.push_str(&format!("  {:width$}{about}\n", c.get_name()));
        }
        s.push('\n');
        s
    };
    let common = |c: &Command| COMMON.contains(&c.get_name());
    let server = |c: &Command| SERVERS.contains(&c.get_name());
    let management = |c: &Command| c.has_subcommands() && !server(c);
    let groups = [
        group("Common Commands", &common),
        group("Management Commands", &management),
        group("Commands", &|c| !common(c) && !management(c) && !server(c)),
        group("Server Commands", &server),
    ]
    .concat();
    format!(
        "Usage:  {{usage}}\n\n{{about}}\n\n{groups}Global Options:\n{{options}}\n\n\
         Run 'berth COMMAND --help' for more information on a command.\n"
    )
}

/// `berth completion SHELL`.
#[derive(Args, Debug)]
pub(crate) struct CompletionArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of a command that the `berth` executable hands to another program of its own
/// (`daemon`, `registry`): listed in the help, parsed there.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct Passthrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// `berth __man DIR` (hidden; scripts/setup.sh installs what it writes).
#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// Directory to write the man pages to (section 1)
    dir: PathBuf,
}

pub(crate) fn completion(a: &CompletionArgs) -> crate::commands::Exit {
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut command(), "berth", &mut script);
    // Written here rather than by clap_complete, which panics on a closed pipe (`| head`).
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

pub(crate) fn man_pages(a: &ManArgs) -> crate::commands::Exit {
    std::fs::create_dir_all(&a.dir)?;
    let mut n = 0;
    write_man(&command(), "berth", &a.dir, &mut n)?;
    eprintln!("wrote {n} man pages to {}", a.dir.display());
    Ok(0)
}

/// Writes `NAME.1` for `cmd` and `NAME-SUB.1` for each of its visible subcommands, down.
fn write_man(cmd: &Command, name: &str, dir: &Path, n: &mut usize) -> std::io::Result<()> {
    let page = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)?;
    *n += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir, n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_groups_every_visible_command_once() {
        let help = command().render_help().to_string();
        let headings = ["Common Commands:", "Management Commands:", "Commands:", "Server Commands:", "Global Options:"];
        let mut at = 0;
        for h in headings {
            let found = help[at..].find(&format!("\n{h}\n")).unwrap_or_else(|| panic!("{h} in order:\n{help}"));
            at += found + 1;
        }
        for c in crate::Cli::command().get_subcommands().filter(|c| !c.is_hide_set()) {
            let listed = help.lines().filter(|l| l.split_whitespace().next() == Some(c.get_name())).count();
            assert_eq!(listed, 1, "{} listed once:\n{help}", c.get_name());
        }
        assert!(help.starts_with("Usage:  berth [OPTIONS] <COMMAND>\n"), "{help}");
        assert!(help.contains("\n  run "), "{help}");
        assert!(help.contains("  daemon ") && help.contains("  registry "), "{help}");
        assert!(!help.contains("__man"), "{help}");
    }
}
