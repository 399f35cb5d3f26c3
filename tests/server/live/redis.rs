//! A `redis-server` of the test's own on a free loopback port, killed
//! (by its PID) when dropped; and a Redis client driven on its own mio
//! poll, every wait bounded.

use roomd::protocol::resp::Reply;
use roomd::server::redis::{Event, RedisClient, RedisConfig, RedisUrl, Script};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    password: Option<String>,
}

impl RedisServer {
    /// Starts one on a free port (with `--requirepass` if `password`).
    pub fn start(password: Option<&str>) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        RedisServer::start_on(port, password.map(str::to_string))
    }

    /// Starts one on `port`, and waits until it accepts connections.
    pub fn start_on(port: u16, password: Option<String>) -> RedisServer {
        let mut command = Command::new("redis-server");
        let port_arg = port.to_string();
        command.args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""]);
        command.args(["--appendonly", "no"]);
        if let Some(p) = &password {
            command.args(["--requirepass", p]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; .ci/run does)");
        let deadline = Instant::now() + super::TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child,
            port,
            password,
        }
    }

    /// Its URL, with `db`.
    pub fn url(&self, db: u32) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        }
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// `kill -9`, and waits until it is gone.
    pub fn kill9(mut self) -> (u16, Option<String>) {
        self.signal("KILL");
        let _ = self.child.wait();
        (self.port, self.password.take())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A [`RedisClient`] on a poll of its own, with the test's clock.
pub struct TestClient {
    pub client: RedisClient,
    poll: mio::Poll,
    start: Instant,
    /// Events not yet looked at.
    pub events: Vec<Event>,
}

impl TestClient {
    /// A client of `url` (node timeout `timeout`, at most `max_pending`
    /// commands waiting), connecting at once.
    pub fn new(url: &str, timeout: Duration, max_pending: usize) -> TestClient {
        let url = RedisUrl::parse(url).expect("a test URL");
        let config = RedisConfig {
            max_pending,
            ..RedisConfig::new(url, timeout)
        };
        let poll = mio::Poll::new().expect("a poll");
        let tokens = [mio::Token(1), mio::Token(2)];
        let mut client = RedisClient::new(config, tokens, 0).expect("a client");
        client.start(poll.registry(), 0);
        TestClient {
            client,
            poll,
            start: Instant::now(),
            events: Vec::new(),
        }
    }

    /// Milliseconds since the client was made.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Drives the client until `done` holds of the events, or `within`
    /// passes (false).
    pub fn run_until(&mut self, within: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let until = Instant::now() + within;
        let mut events = mio::Events::with_capacity(16);
        loop {
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if done(&self.events) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let due = self
                .client
                .next_deadline()
                .map(|at| Duration::from_millis(at.saturating_sub(self.now())));
            let wait = due.map_or(left, |d| d.min(left));
            self.poll.poll(&mut events, Some(wait)).expect("poll");
            let now = self.now();
            for event in events.iter() {
                self.client.handle_event(self.poll.registry(), event, now);
            }
            self.client.handle_timeout(self.poll.registry(), now);
        }
    }

    /// Waits for [`Event::Up`] (panics after `within`).
    pub fn wait_up(&mut self, within: Duration) {
        assert!(
            self.run_until(within, |e| e.contains(&Event::Up)),
            "never up: {:?}",
            self.events
        );
        self.events.retain(|e| *e != Event::Up);
    }

    /// Submits a command and waits for its reply.
    pub fn call(&mut self, id: u64, args: &[&str]) -> Reply {
        let now = self.now();
        let args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.client.submit(id, args, now);
        self.reply(id)
    }

    /// Runs a script and waits for its reply.
    pub fn script(&mut self, id: u64, script: &Script) -> Reply {
        let now = self.now();
        self.client.submit_script(id, script, vec![], vec![], now);
        self.reply(id)
    }

    /// Waits for the reply to command `id` (and takes it out of the events).
    pub fn reply(&mut self, id: u64) -> Reply {
        let is = |e: &Event| matches!(e, Event::Reply { id: i, .. } if *i == id);
        assert!(
            self.run_until(super::TIMEOUT, |es| es.iter().any(is)),
            "no reply to {id}"
        );
        let at = self.events.iter().position(is).expect("found above");
        match self.events.remove(at) {
            Event::Reply { reply: Ok(r), .. } => r,
            other => panic!("command {id} failed: {other:?}"),
        }
    }
}
