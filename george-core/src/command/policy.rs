//! [`ArgPolicy`]: which arguments an allow-listed program may be given.
//!
//! Defence in depth, not a sandbox: the built-in rules refuse the options known to make
//! a program run *another* program (`git -c alias.x='!sh …'`, `find -exec`, `sh -c`,
//! `env`, `xargs`, …), so that allowing `git` or `find` does not quietly allow a shell.
//! A program can still do whatever it does by design (`make` runs recipes, `python
//! script.py` runs the script). Untrusted work belongs in an embedder's own
//! [`ToolExecutor`](crate::tool::ToolExecutor) that runs commands in a container or
//! namespace.

use regex::Regex;

/// Programs whose purpose is to run another program: refused whatever their arguments,
/// unless the operator gives them an explicit policy ([`ArgPolicy::permissive`]).
pub const PROGRAM_RUNNERS: &[&str] = &[
    "env", "xargs", "nice", "nohup", "timeout", "stdbuf", "setsid", "sudo", "doas", "su",
    "runuser", "chroot", "unshare", "nsenter", "strace", "ltrace", "gdb", "time", "watch", "flock",
    "busybox", "parallel", "script", "expect", "ionice", "taskset", "chrt",
];

/// The rules for one program's arguments. Build with [`ArgPolicy::for_program`] (the
/// built-in rules for well-known programs) and narrow or widen it.
///
/// An argument is refused when it equals a denied option, starts with a denied long
/// option followed by `=` (`--upload-pack=x`), or — for a denied one-letter option with
/// `clusters` on — is a cluster of short options containing it (`sh -ec`). A denied
/// subcommand is refused as the first argument that is not an option (`git config`).
/// With an allow pattern, every argument must match it whole.
#[derive(Debug, Clone, Default)]
pub struct ArgPolicy {
    refuse_all: Option<String>,
    deny_options: Vec<String>,
    deny_subcommands: Vec<String>,
    clusters: bool,
    allow: Option<Regex>,
}

impl ArgPolicy {
    /// No rule at all: every argument is accepted. For a program the operator trusts
    /// with any arguments (including the [`PROGRAM_RUNNERS`]).
    pub fn permissive() -> Self {
        ArgPolicy::default()
    }

    /// The built-in rules for `program` (by its bare name):
    ///
    /// | program | refused |
    /// |---|---|
    /// | `git` | `-c`, `--config-env`, `--config`, `--exec-path`, `--upload-pack`, `--receive-pack`, `--exec`, `--template`, `--extcmd`, `-x`/`--exec` (rebase), subcommands `config`, `submodule`, `bisect`, `filter-branch`, `difftool`, `mergetool`, `daemon`, `instaweb`, `credential`, `archimport`, `cvsimport`, `svn` |
    /// | `find` | `-exec`, `-execdir`, `-ok`, `-okdir`, `-fprint`, `-fprint0`, `-fprintf`, `-fls`, `-delete` |
    /// | `sh`, `bash`, `dash`, `zsh`, `ksh` | `-c` (also in clusters such as `-ec`) |
    /// | `python`, `python3`, `node`, `perl`, `ruby`, `php` | `-c`, `-e`, `--eval`, `-r` (perl/ruby/php one-liners) |
    /// | `awk`, `gawk`, `mawk`, `sed` | every argument (their programs can run commands: `system()`, GNU sed's `e`) |
    /// | `tar` | `--to-command`, `--use-compress-program`, `-I`, `--checkpoint-action`, `--rsh-command`, `--info-script`, `--new-volume-script`, `-F` |
    /// | `rsync` | `-e`, `--rsh`, `--rsync-path` |
    /// | `ssh`, `scp`, `sftp` | `-o`, `-F`, `-S` (ProxyCommand, LocalCommand, control sockets) |
    /// | `make` | `--eval`, `-E`, `SHELL=…` is not parsed: allow `make` only for trusted Makefiles |
    /// | [`PROGRAM_RUNNERS`] | every call |
    ///
    /// Any other program: no rule.
    pub fn for_program(program: &str) -> Self {
        let deny = |opts: &[&str]| ArgPolicy {
            deny_options: opts.iter().map(|s| s.to_string()).collect(),
            ..ArgPolicy::default()
        };
        match program {
            "git" => ArgPolicy {
                deny_subcommands: [
                    "config",
                    "submodule",
                    "bisect",
                    "filter-branch",
                    "difftool",
                    "mergetool",
                    "daemon",
                    "instaweb",
                    "credential",
                    "archimport",
                    "cvsimport",
                    "svn",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                ..deny(&[
                    "-c",
                    "--config-env",
                    "--config",
                    "--exec-path",
                    "--upload-pack",
                    "--receive-pack",
                    "--exec",
                    "--template",
                    "--extcmd",
                    "-x",
                ])
            },
            "find" => deny(&[
                "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls",
                "-delete",
            ]),
            "sh" | "bash" | "dash" | "zsh" | "ksh" => ArgPolicy {
                clusters: true,
                ..deny(&["-c"])
            },
            "python" | "python3" | "node" | "perl" | "ruby" | "php" => {
                deny(&["-c", "-e", "-E", "--eval", "-r", "-p", "--print"])
            }
            "awk" | "gawk" | "mawk" | "sed" => ArgPolicy::refuse_all(
                "its scripts can run commands (awk's system(), GNU sed's `e`)",
            ),
            "tar" => deny(&[
                "--to-command",
                "--use-compress-program",
                "-I",
                "--checkpoint-action",
                "--rsh-command",
                "--info-script",
                "--new-volume-script",
                "-F",
            ]),
            "rsync" => deny(&["-e", "--rsh", "--rsync-path"]),
            "ssh" | "scp" | "sftp" => deny(&["-o", "-F", "-S"]),
            "make" => deny(&["--eval", "-E"]),
            p if PROGRAM_RUNNERS.contains(&p) => {
                ArgPolicy::refuse_all("it exists to run other programs")
            }
            _ => ArgPolicy::default(),
        }
    }

    /// A policy refusing every call of the program, with `why` in the refusal.
    pub fn refuse_all(why: impl Into<String>) -> Self {
        ArgPolicy {
            refuse_all: Some(why.into()),
            ..ArgPolicy::default()
        }
    }

    /// Refuses `option` too (`-x`, `--long`; a long option is also refused as `--long=…`).
    pub fn deny_option(mut self, option: impl Into<String>) -> Self {
        self.deny_options.push(option.into());
        self
    }

    /// Refuses `name` as the program's subcommand (its first non-option argument).
    pub fn deny_subcommand(mut self, name: impl Into<String>) -> Self {
        self.deny_subcommands.push(name.into());
        self
    }

    /// Accepts only arguments that match `pattern` whole (it is anchored for you).
    ///
    /// # Errors
    /// `InvalidInput` when `pattern` is not a valid regular expression.
    pub fn allow_args(mut self, pattern: &str) -> crate::Result<Self> {
        let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            crate::Error::invalid_input(format!("argument pattern {pattern:?}: {e}"))
        })?;
        self.allow = Some(re);
        Ok(self)
    }

    /// `Ok` when `args` pass every rule; else the reason, naming the rule.
    pub fn check(&self, program: &str, args: &[String]) -> Result<(), String> {
        if let Some(why) = &self.refuse_all {
            return Err(format!(
                "{program:?} is refused whatever its arguments: {why} (give it an explicit \
                 ArgPolicy to allow it)"
            ));
        }
        let mut seen_subcommand = false;
        for arg in args {
            if let Some(opt) = self.denied_option(arg) {
                return Err(format!(
                    "argument {arg:?} of {program:?} is refused: option {opt:?} can run other \
                     programs or write outside the command's purpose (argument policy of {program:?})"
                ));
            }
            if !seen_subcommand && !arg.starts_with('-') {
                seen_subcommand = true;
                if self.deny_subcommands.iter().any(|s| s == arg) {
                    return Err(format!(
                        "subcommand {arg:?} of {program:?} is refused (argument policy of {program:?})"
                    ));
                }
            }
            if let Some(re) = &self.allow
                && !re.is_match(arg)
            {
                return Err(format!(
                    "argument {arg:?} of {program:?} does not match the allowed pattern {:?}",
                    re.as_str()
                ));
            }
        }
        Ok(())
    }

    fn denied_option(&self, arg: &str) -> Option<&str> {
        self.deny_options.iter().map(String::as_str).find(|opt| {
            if arg == *opt {
                return true;
            }
            if opt.starts_with("--") {
                return arg.starts_with(&format!("{opt}="));
            }
            // `-cfoo` (an attached value) and, for shells, clusters like `-ec`.
            let short = opt.len() == 2 && opt.starts_with('-');
            let is_cluster = arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 2;
            if short && is_cluster {
                let letter = &opt[1..];
                return arg.starts_with(opt)
                    || (self.clusters
                        && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
                        && arg[1..].contains(letter));
            }
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(program: &str, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        ArgPolicy::for_program(program).check(program, &args)
    }

    #[test]
    fn built_in_rules() {
        let table: &[(&str, &[&str], bool)] = &[
            ("git", &["status"], true),
            ("git", &["log", "--oneline", "-n", "3"], true),
            ("git", &["-c", "alias.x=!sh -c id", "x"], false),
            ("git", &["-calias.x=!id", "x"], false),
            (
                "git",
                &["fetch", "--upload-pack=touch /tmp/x", "origin"],
                false,
            ),
            ("git", &["config", "alias.x", "!id"], false),
            ("git", &["--no-pager", "config", "alias.x", "!id"], false),
            ("git", &["rebase", "-x", "id", "HEAD~1"], false),
            ("git", &["log", "--", "config"], true),
            ("find", &[".", "-name", "*.rs"], true),
            ("find", &[".", "-exec", "sh", "-c", "id", ";"], false),
            ("find", &[".", "-execdir", "id", ";"], false),
            ("find", &[".", "-ok", "id", ";"], false),
            ("sh", &["script.sh"], true),
            ("sh", &["-c", "id"], false),
            ("sh", &["-ec", "id"], false),
            ("bash", &["-xc", "id"], false),
            ("python3", &["-c", "import os"], false),
            ("python3", &["tests.py"], true),
            ("env", &[], false),
            ("xargs", &["echo"], false),
            ("awk", &["{print}"], false),
            ("tar", &["-xf", "a.tar", "--to-command=sh"], false),
            ("echo", &["-c", "anything"], true),
        ];
        for (program, args, ok) in table {
            assert_eq!(check(program, args).is_ok(), *ok, "{program} {args:?}");
        }
    }

    #[test]
    fn allow_pattern_and_extra_denies() {
        let p = ArgPolicy::permissive()
            .allow_args("status|log|--oneline")
            .unwrap()
            .deny_option("--oneline");
        assert!(p.check("git", &["status".into()]).is_ok());
        assert!(p.check("git", &["push".into()]).is_err());
        let e = p.check("git", &["log".into(), "--oneline".into()]);
        assert!(e.unwrap_err().contains("--oneline"));
        assert!(ArgPolicy::permissive().allow_args("(").is_err());
        assert!(ArgPolicy::permissive().check("env", &["x".into()]).is_ok());
    }
}
