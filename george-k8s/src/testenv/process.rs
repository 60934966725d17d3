//! The control plane's processes: spawned from one long-lived thread so that Linux's
//! parent-death signal (which follows the *thread* that forked) only fires when the test
//! binary itself exits or dies, and killed by PID at exit (an `atexit` handler) or when
//! their [`Proc`] is dropped.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, Once};

use super::Error;

/// PIDs and directories to clean up when the process exits.
static CLEANUP: Mutex<(Vec<u32>, Vec<PathBuf>)> = Mutex::new((Vec::new(), Vec::new()));
static AT_EXIT: Once = Once::new();

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

extern "C" fn cleanup_at_exit() {
    let (pids, dirs) = match CLEANUP.lock() {
        Ok(mut g) => (std::mem::take(&mut g.0), std::mem::take(&mut g.1)),
        Err(_) => return,
    };
    for pid in pids {
        kill(pid);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn register_at_exit() {
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function with no captured state.
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
    });
}

/// Removes `dir` (recursively) when the test binary exits.
pub(crate) fn remove_at_exit(dir: &Path) {
    register_at_exit();
    if let Ok(mut g) = CLEANUP.lock() {
        g.1.push(dir.to_path_buf());
    }
}

fn kill(pid: u32) {
    // SAFETY: kill(2) on a PID this process started; a stale PID is an error we ignore.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Spawns `cmd` on the spawner thread (started on first use; it never exits).
fn spawn_on_spawner(cmd: Command) -> std::io::Result<Child> {
    let tx = {
        let mut g = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("george-k8s-testenv-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                    // Every sender is gone only at exit: stay alive so the children's
                    // parent-death signal does not fire early.
                    loop {
                        std::thread::park();
                    }
                })
                .expect("spawner thread");
            tx
        })
        .clone()
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// A running control-plane process, its output going to `log`. Dropping it kills it.
#[derive(Debug)]
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub(crate) fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> Result<Proc, Error> {
        register_at_exit();
        let out = File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = spawn_on_spawner(cmd).map_err(|e| Error::io(program, e))?;
        if let Ok(mut g) = CLEANUP.lock() {
            g.0.push(child.id());
        }
        Ok(Proc { name, child, log })
    }

    /// The process's name (`etcd`, `kube-apiserver`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `max` bytes of its log.
    pub fn log_tail(&self, max: u64) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id();
        kill(pid);
        let _ = self.child.wait();
        if let Ok(mut g) = CLEANUP.lock() {
            g.0.retain(|p| *p != pid);
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it
/// before it is used, which start-up retries cover).
pub(crate) fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))
}
