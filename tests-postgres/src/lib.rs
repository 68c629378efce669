//! A PostgreSQL server for the tests and the benchmarks, and a fresh database for each
//! test or measurement.
//!
//! With `DATABASE_URL` set, its server is used (the URL names a role that may create
//! databases). Otherwise the first test that asks starts a throwaway cluster for the
//! whole test process from the PostgreSQL binaries on the machine (`initdb`, `pg_ctl`,
//! found on `PATH` or under `/usr/lib/postgresql/*/bin`): in a temporary directory, on a
//! free loopback port, listening on 127.0.0.1 only with its unix socket in that
//! directory, as the `postgres` user when the tests run as root (PostgreSQL refuses to
//! run as root), `fsync` off. It is stopped (`pg_ctl stop -m immediate`) and its
//! directory removed when the process exits (`atexit`), and by a watchdog process if the
//! tests are killed before they can do it.
//!
//! No server to be had is a failure naming what to install, never a silent skip.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// What to do when there is no server.
const INSTALL: &str = "install PostgreSQL (`apt-get install postgresql`, which brings \
                       `initdb` and `pg_ctl`), or set `DATABASE_URL` to a server whose \
                       role may create databases";

/// How `pg_ctl` stops a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `-m fast`: every session is ended, its transaction rolled back, and the server
    /// writes a checkpoint and exits: an orderly shutdown.
    Fast,
    /// `-m immediate`: the server exits at once, as in a crash, and replays its log when
    /// started again.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A throwaway PostgreSQL cluster, stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `(uid, gid)` to run the server's commands as, when the tests run as root.
    user: Option<(u32, u32)>,
    stopped: AtomicBool,
}

impl Cluster {
    /// Starts a new cluster (`initdb`, then `pg_ctl start`), as the module says.
    ///
    /// # Errors
    ///
    /// Why no cluster could be started, with what to install when binaries are missing.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin()?;
        let user = server_user()?;
        let dir = std::env::temp_dir().join(format!("rustf-pg-{}", unique()));
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("giving {} to `postgres`: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            user,
            stopped: AtomicBool::new(false),
        };
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data().as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-locale".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        // A port found free may be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.spawn_watchdog();
                    return Ok(cluster);
                }
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// The URL of database `dbname` on this cluster.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    /// Restarts the server (`pg_ctl restart -m immediate`): every connection is cut.
    ///
    /// # Panics
    ///
    /// If it does not come back.
    pub fn restart(&self) {
        self.restart_with(StopMode::Immediate);
    }

    /// Restarts the server, stopped as `mode` says: every connection is cut.
    ///
    /// # Panics
    ///
    /// If it does not come back.
    pub fn restart_with(&self, mode: StopMode) {
        let log = self.dir.join("log");
        self.pg_ctl(&[
            "-l".as_ref(),
            log.as_os_str(),
            "-m".as_ref(),
            mode.as_arg().as_ref(),
            "restart".as_ref(),
        ])
        .unwrap_or_else(|why| panic!("restarting the test cluster: {why}"));
    }

    /// Stops the server as `mode` says, and waits until it has: until
    /// [`start_server`](Self::start_server), connecting to it is refused.
    ///
    /// # Panics
    ///
    /// If it does not stop.
    pub fn stop_server(&self, mode: StopMode) {
        self.pg_ctl(&["-m".as_ref(), mode.as_arg().as_ref(), "stop".as_ref()])
            .unwrap_or_else(|why| panic!("stopping the test cluster: {why}"));
    }

    /// Starts the server stopped by [`stop_server`](Self::stop_server) again, on the same
    /// port, and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If it does not start.
    pub fn start_server(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|why| panic!("starting the test cluster again: {why}"));
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // `fsync` off: what a test commits survives the server's crash (an immediate
        // stop) in the OS's cache, only not the machine's. Not `synchronous_commit`
        // off: that loses the last commits of a crashed server, which a restart test
        // must find.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off \
             -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        self.pg_ctl(&[
            "-l".as_ref(),
            log.as_os_str(),
            "-o".as_ref(),
            options.as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
            "start".as_ref(),
        ])
        .map_err(|why| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{why}\nserver log:\n{log}")
        })
    }

    /// Stops the server and removes its directory, once.
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.pg_ctl(&["-m".as_ref(), "immediate".as_ref(), "stop".as_ref()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A process of its own that stops the server once this process is gone, however it
    /// went (a test binary killed by a signal runs no `atexit`).
    fn spawn_watchdog(&self) {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; \
             '{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        let mut command = Command::new("sh");
        command
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C to the tests does not stop the watchdog.
            .process_group(0);
        self.as_server_user(&mut command);
        // Without it the atexit stop still runs; nothing to fail the tests over.
        let _ = command.spawn();
    }

    fn as_server_user(&self, command: &mut Command) {
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command.current_dir(&self.dir);
    }

    /// Runs one of the cluster's binaries as the server's user; its output on failure.
    /// `pg_ctl` on this cluster's data directory, waiting for its action (`-w`): `args`
    /// are its other options, then the action.
    fn pg_ctl(&self, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let data = self.data();
        let mut all: Vec<&std::ffi::OsStr> = vec!["-D".as_ref(), data.as_os_str(), "-w".as_ref()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    fn run(&self, name: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let mut command = Command::new(self.bin.join(name));
        command.args(args).stdin(Stdio::null());
        self.as_server_user(&mut command);
        // Output into a file, not a pipe: `pg_ctl start` leaves the server running, and a
        // pipe it inherited would keep `output()` waiting for it.
        let out_path = self.dir.join(format!("{name}.out"));
        let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let status = command
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| format!("running {name}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            Err(format!("{name} failed ({status}):\n{output}"))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory with `initdb`, `pg_ctl` and `postgres`.
fn find_bin() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file());
    let initdb = match on_path {
        Some(initdb) => initdb,
        None => {
            // Debian keeps them out of PATH, one directory per major version: the newest.
            let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    let initdb = entry.path().join("bin/initdb");
                    initdb.is_file().then_some((version, initdb))
                })
                .collect();
            found.sort();
            found.pop().map(|(_, initdb)| initdb).ok_or_else(|| {
                format!("no `initdb` on PATH or under /usr/lib/postgresql: {INSTALL}")
            })?
        }
    };
    // `/usr/local/bin/initdb` may be a link into the version's directory, where the
    // server binary is too.
    let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    let bin = real.parent().map(Path::to_owned).unwrap_or_default();
    for needed in ["pg_ctl", "postgres"] {
        if !bin.join(needed).is_file() {
            return Err(format!(
                "no `{needed}` beside {}: {INSTALL}",
                real.display()
            ));
        }
    }
    Ok(bin)
}

/// `(uid, gid)` of the `postgres` user when the tests run as root, who may not run the
/// server; `None` otherwise.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("reading /proc/self: {e}"))?;
    if euid != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("running `id`: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "running as root, and there is no `postgres` user to run the server as: \
                     {INSTALL}"
                )
            })
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

fn free_port() -> Result<u16, String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A name no other test, in this process or another, has: pid, counter, clock.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}_{n}_{nanos}", std::process::id())
}

/// The server the tests of this process share.
enum Server {
    /// `DATABASE_URL`.
    External(String),
    /// Started by this process.
    Local(Cluster),
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> &'static Server {
    let server = SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(Server::External(url)),
        _ => {
            let cluster = Cluster::start()?;
            register_atexit();
            Ok(Server::Local(cluster))
        }
    });
    match server {
        Ok(server) => server,
        Err(why) => panic!("no PostgreSQL server for the tests: {why}"),
    }
}

// A `static` is never dropped, so the shared cluster is stopped from `atexit`: the only
// way to run code when the test harness's `main` returns.
#[allow(unsafe_code)] // `atexit` is a C function; the handler neither panics nor unwinds.
fn register_atexit() {
    extern "C" fn stop_server() {
        let _ = std::panic::catch_unwind(|| {
            if let Some(Ok(Server::Local(cluster))) = SERVER.get() {
                cluster.stop();
            }
        });
    }
    // SAFETY: `stop_server` is a plain `extern "C" fn()` that catches any panic.
    unsafe {
        libc::atexit(stop_server);
    }
}

/// A fresh, empty database for one test, so tests run in parallel. On a server of
/// `DATABASE_URL` it is dropped again with the value; a local cluster is thrown away
/// whole.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    name: String,
    admin_url: String,
    external: bool,
}

impl TestDatabase {
    /// Creates `t_<unique>` on the tests' server.
    ///
    /// # Panics
    ///
    /// When there is no server (saying what to install), or it refuses.
    pub fn create() -> TestDatabase {
        let (admin_url, external) = match server() {
            Server::External(url) => (url.clone(), true),
            Server::Local(cluster) => (cluster.url("postgres"), false),
        };
        let name = format!("t_{}", unique());
        admin(&admin_url, format!("CREATE DATABASE {name}"));
        TestDatabase {
            url: with_dbname(&admin_url, &name),
            name,
            admin_url,
            external,
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.external && !std::thread::panicking() {
            admin(
                &self.admin_url,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

/// Runs `sql` on the server at `url`, from a thread of its own (the caller may be inside
/// a runtime, where blocking on another is refused).
fn admin(url: &str, sql: String) {
    let url = url.to_owned();
    let target = sql.clone();
    let done = on_own_runtime(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to {}: {e} ({:?})", redacted(&url), e))?;
        tokio::spawn(connection);
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("{e} ({:?})", e.as_db_error().map(|d| d.message())))
    });
    if let Err(why) = done {
        panic!("`{target}` on the tests' PostgreSQL server: {why}");
    }
}

/// Runs `future` to completion on a new runtime on a new thread.
pub fn on_own_runtime<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
    .join()
    .expect("the thread ran")
}

/// `url` naming database `name` instead of its own: the path of a `postgres://` URL, or
/// a `dbname=` appended to a `key=value` string (the last one counts).
fn with_dbname(url: &str, name: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (rest, query) = match rest.split_once('?') {
                Some((rest, query)) => (rest, format!("?{query}")),
                None => (rest, String::new()),
            };
            let authority = rest
                .split_once('/')
                .map_or(rest, |(authority, _)| authority);
            format!("{scheme}://{authority}/{name}{query}")
        }
        None => format!("{url} dbname={name}"),
    }
}

fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split_once(':').map_or(user, |(u, _)| u);
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_owned(),
        },
        None => "the DATABASE_URL server".to_owned(),
    }
}
