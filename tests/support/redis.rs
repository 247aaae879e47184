//! A real `redis-server` for tests: each [`RedisServer`] is its own instance on a free
//! 127.0.0.1 port, with no persistence and a temporary directory, stopped on drop.
//!
//! Without the `redis-server` binary, [`RedisServer::start`] prints a notice and returns
//! `None`, and the test returns; with `TOWER_SSE_REQUIRE_REDIS=1` (CI sets it) a missing
//! binary fails the test instead.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

const BINARY: &str = "redis-server";
const REQUIRE: &str = "TOWER_SSE_REQUIRE_REDIS";
/// How long a server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports taken by someone else between picking and binding are retried this often.
const PORT_ATTEMPTS: usize = 10;

/// A running `redis-server`; killed on drop, its directory removed.
#[derive(Debug)]
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns `None` after printing a notice when `redis-server` is
    /// not installed (a failure instead when `TOWER_SSE_REQUIRE_REDIS=1`).
    pub(crate) fn start() -> Option<Self> {
        if !binary_present() {
            assert!(
                std::env::var(REQUIRE).as_deref() != Ok("1"),
                "{REQUIRE}=1 but `{BINARY}` is not installed (apt-get install redis-server)"
            );
            // Straight to stderr, past the test harness's capture, so `cargo test` shows it;
            // once, not once per test.
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: `{BINARY}` not found: skipping the Redis tests \
                     (apt-get install redis-server; {REQUIRE}=1 makes this a failure)"
                );
            });
            return None;
        }
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let mut server = Self {
                port: free_port(),
                dir: temp_dir(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(error) => last_error = error,
            }
        }
        panic!("could not start {BINARY}: {last_error}");
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits until it is gone.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port; it comes back empty (no persistence).
    pub(crate) fn restart(&mut self) {
        self.stop();
        let mut last_error = String::new();
        // The port is ours, but the old socket may take a moment to be released.
        for _ in 0..PORT_ATTEMPTS {
            match self.spawn() {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
        }
        panic!(
            "could not restart {BINARY} on port {}: {last_error}",
            self.port
        );
    }

    /// A synchronous connection, for commands a test sends to the server directly.
    pub(crate) fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect to the test redis-server")
    }

    /// Starts `redis-server` and waits for its "Ready to accept connections" line, then
    /// for a `PONG`: no guessing how long it takes.
    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|error| error.to_string())?;
        let port = self.port.to_string();
        let mut child = Command::new(BINARY)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "", "--loglevel", "notice"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawn: {error}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, log) = mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        let ready = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if line.contains("Ready to accept connections") => break true,
                Ok(line) => seen.push(line),
                // Exited (the port was taken, say) or too slow.
                Err(_) => break false,
            }
        };
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("not ready; its log: {}", seen.join(" | ")));
        }
        self.child = Some(child);
        let mut connection = self.connection();
        let pong: String = redis::cmd("PING")
            .query(&mut connection)
            .map_err(|error| error.to_string())?;
        assert_eq!(pong, "PONG");
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary_present() -> bool {
    match Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(error) if error.kind() == ErrorKind::NotFound => false,
        Err(error) => panic!("could not run {BINARY}: {error}"),
    }
}

/// A port that was free a moment ago; `start` retries if someone takes it meanwhile.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("tower-sse-redis-{}-{n}", std::process::id()))
}
