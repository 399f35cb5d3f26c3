//! The benchmark scenarios, and what they share: where the server is, how
//! to find fields in its JSON without parsing it, and the summary line.

pub mod crowd;
pub mod fanout;
pub mod handshakes;
pub mod relay;

use crate::args::Args;
use crate::net::TlsClient;
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};

/// The server under test.
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A second node of the same server (a cluster), if any: `fanout`
    /// puts every other subscriber there and `relay` every guest.
    pub addr2: Option<SocketAddr>,
    /// Its pid, to read its CPU time and memory from /proc; for a cluster
    /// a comma-separated list (every node and Redis), whose CPU is summed.
    pub server_pid: Option<String>,
    /// Source addresses to spread connections over (empty: the default).
    pub sources: Vec<IpAddr>,
    /// A label for the output (`roomd`, `node`, `limit`).
    pub label: String,
    /// For a `wss://` address: the TLS client every connection uses.
    pub tls: Option<TlsClient>,
}

impl Target {
    /// Reads `--addr` (`HOST:PORT`, `ws://HOST:PORT` or `wss://HOST:PORT`),
    /// `--tls-ca PEM` (the certificates a `wss://` server's must chain to;
    /// required with `wss://`), `--tls-name` (the name the certificate must
    /// carry; the address's IP by default), `--tls-kx` (key exchange
    /// groups to offer, comma-separated, e.g. `X25519`; rustls' defaults
    /// otherwise), `--server-pid PID[,PID...]`, `--src A-B`, `--label`,
    /// and `--addr2` (a second node, in the same scheme as `--addr`).
    pub fn from_args(args: &Args) -> Result<Target, String> {
        let spec = args.str("addr").unwrap_or("127.0.0.1:8080");
        let (secure, addr) = parse_addr("addr", spec)?;
        let addr2 = match args.str("addr2") {
            None => None,
            Some(spec2) => {
                let (secure2, addr2) = parse_addr("addr2", spec2)?;
                if secure2 != secure {
                    return Err("--addr2 needs the same scheme as --addr".into());
                }
                Some(addr2)
            }
        };
        let tls = match (secure, args.str("tls-ca")) {
            (false, None) => None,
            (false, Some(_)) => return Err("--tls-ca needs a wss:// --addr".into()),
            (true, None) => return Err("a wss:// --addr needs --tls-ca PEM".into()),
            (true, Some(ca)) => {
                let ip = addr.ip().to_string();
                let name = args.str("tls-name").unwrap_or(&ip);
                let kx: Vec<&str> = args
                    .str("tls-kx")
                    .map_or(Vec::new(), |k| k.split(',').collect());
                Some(TlsClient::new(ca.as_ref(), name, &kx)?)
            }
        };
        let sources = match args.str("src") {
            None => Vec::new(),
            Some(spec) => parse_sources(spec)?,
        };
        Ok(Target {
            addr,
            addr2,
            server_pid: args.str("server-pid").map(str::to_string),
            sources,
            label: args.str("label").unwrap_or("server").to_string(),
            tls,
        })
    }

    /// The node a connection goes to: the second (`--addr2`) if `second`
    /// and there is one, else the first.
    pub fn node(&self, second: bool) -> SocketAddr {
        match self.addr2 {
            Some(addr2) if second => addr2,
            _ => self.addr,
        }
    }

    /// The source address for connection number `i`.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        if self.sources.is_empty() {
            None
        } else {
            Some(self.sources[i % self.sources.len()])
        }
    }
}

/// Parses `HOST:PORT`, `ws://HOST:PORT` or `wss://HOST:PORT` (whether
/// it is `wss://`, and the address) of option `--key`.
fn parse_addr(key: &str, spec: &str) -> Result<(bool, SocketAddr), String> {
    let (secure, host_port) = if let Some(rest) = spec.strip_prefix("wss://") {
        (true, rest)
    } else {
        (false, spec.strip_prefix("ws://").unwrap_or(spec))
    };
    let addr = host_port
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("--{key} {spec:?}: {e}"))?;
    Ok((secure, addr))
}

/// Parses `127.0.0.2-9` (a range of the last octet) or a comma-separated list.
fn parse_sources(spec: &str) -> Result<Vec<IpAddr>, String> {
    let bad = || format!("--src: cannot parse {spec:?}");
    if let Some((first, last)) = spec.split_once('-') {
        let first: std::net::Ipv4Addr = first.parse().map_err(|_| bad())?;
        let last: u8 = last.parse().map_err(|_| bad())?;
        let [a, b, c, d] = first.octets();
        if last < d {
            return Err(bad());
        }
        return Ok((d..=last).map(|x| IpAddr::from([a, b, c, x])).collect());
    }
    spec.split(',')
        .map(|s| s.parse().map_err(|_| bad()))
        .collect()
}

/// The string value of `"key":"..."` in a compact JSON text, if present.
pub fn str_field<'a>(text: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let pat = format!("\"{key}\":\"");
    let start = find(text, pat.as_bytes())? + pat.len();
    let len = text[start..].iter().position(|&b| b == b'"')?;
    Some(&text[start..start + len])
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether the message's `type` is `ty` (looked for near the start).
pub fn is_type(text: &[u8], ty: &str) -> bool {
    str_field(text, "type") == Some(ty.as_bytes())
}

/// Position of the first `byte` in `hay`, eight bytes at a time.
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * byte as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| offset + i)
}

/// Parses the `#a:b:c#` stamp the scenarios put in their messages.
pub fn stamp(text: &[u8]) -> Option<[u64; 3]> {
    let start = find_byte(text, b'#')? + 1;
    let mut out = [0u64; 3];
    let mut i = 0;
    for &b in &text[start..] {
        match b {
            b'0'..=b'9' => out[i] = out[i] * 10 + (b - b'0') as u64,
            b':' if i < 2 => i += 1,
            b'#' if i == 2 => return Some(out),
            _ => return None,
        }
    }
    None
}

/// What went wrong during a run: error replies and lost connections.
#[derive(Debug, Default)]
pub struct Problems {
    /// Error messages the server sent.
    pub errors: u64,
    /// Connections that closed or failed.
    pub closed: usize,
    /// The first of either, for the report.
    pub first: Option<String>,
}

impl Problems {
    /// Counts an error reply.
    pub fn error_reply(&mut self, text: &[u8]) {
        self.errors += 1;
        if self.first.is_none() {
            self.first = Some(String::from_utf8_lossy(text).into_owned());
        }
    }

    /// Counts a lost connection (the first three are printed).
    pub fn closed(&mut self, id: usize, why: &str) {
        self.closed += 1;
        if self.closed <= 3 {
            eprintln!("  connection {id} closed: {why}");
        }
        if self.first.is_none() {
            self.first = Some(format!("connection {id}: {why}"));
        }
    }

    /// The first problem, or "".
    pub fn first(&self) -> &str {
        self.first.as_deref().unwrap_or_default()
    }
}

/// A scenario's figures: printed as its final JSON line.
pub type Summary = Map<String, Value>;

/// Adds `{what}_per_server_cpu_s`: the rate divided by the share of a core
/// the server used, a figure that holds up better than the raw rate on a
/// machine the server shares with other work.
pub fn per_server_cpu(json: &mut Summary, what: &str, per_second: f64) {
    if let Some(cpu) = json.get("server_cpu").and_then(Value::as_f64)
        && cpu > 0.0
    {
        let v = (per_second / cpu).round();
        json.insert(format!("{what}_per_server_cpu_s"), v.into());
        println!(
            "  {v:.0} {} per second of server CPU",
            what.replace('_', " ")
        );
    }
}

/// Starts a scenario's JSON summary.
pub fn summary(scenario: &str, target: &Target) -> Summary {
    let mut m = Map::new();
    m.insert("scenario".into(), scenario.into());
    m.insert("server".into(), target.label.clone().into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_and_stamps() {
        let t = br#"{"type":"room-created","roomId":"123456"}"#;
        assert_eq!(str_field(t, "roomId"), Some(&b"123456"[..]));
        assert!(is_type(t, "room-created"));
        assert!(!is_type(t, "room"));
        let m = br##"{"type":"chat-message","content":"#3:17:123456#xxxx"}"##;
        assert_eq!(stamp(m), Some([3, 17, 123456]));
        assert_eq!(stamp(b"{\"a\":\"#1:2#\"}"), None);
        assert_eq!(stamp(b"no stamp"), None);
    }

    #[test]
    fn find_byte_agrees_with_a_plain_scan() {
        let hay: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for byte in 0..=255u8 {
            for start in 0..20 {
                let want = hay[start..].iter().position(|&b| b == byte);
                assert_eq!(
                    find_byte(&hay[start..], byte),
                    want,
                    "byte {byte} from {start}"
                );
            }
        }
    }

    #[test]
    fn parses_source_ranges() {
        let v = parse_sources("127.0.0.2-4").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2], IpAddr::from([127, 0, 0, 4]));
        assert_eq!(parse_sources("127.0.0.1,127.0.0.5").unwrap().len(), 2);
        assert!(parse_sources("127.0.0.5-2").is_err());
    }
}
