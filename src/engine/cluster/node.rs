//! This node's life in the cluster: registering, synchronising its
//! replica, applying events in sequence, heartbeats, reaping the dead,
//! and being fenced (see the [module docs](super)).

use super::snapshot::Snapshot;
use super::{BusCommand, BusInput, BusReply, ClusterPolicy, Event, global, local_of, node_of};
use crate::engine::outbox::Cx;
use crate::engine::{ConnId, ConnMap, Engine, Output};
use crate::protocol::close::CloseReason;
use crate::protocol::token::Identity;
use crate::protocol::{Protocol, UNAVAILABLE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Events buffered while synchronising, at most; past it the node asks
/// again.
const MAX_BUFFERED: usize = 100_000;

/// A replica member: a connection of any node, its route and identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    /// Index into the engine's routes.
    pub route: usize,
    /// Its identity, with auth on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The query string it opened with (to announce it to a node whose
    /// replica missed the open).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
}

/// Where the node stands.
#[derive(Debug, Serialize, Deserialize)]
enum Phase {
    /// Redis is not reachable, or the node is registering and subscribing.
    Joining,
    /// `Sync` asked for at `since_ms`; events are buffered until the
    /// replica is loaded (from the snapshot stored for the `Stored` event
    /// at `fetch_at`, once seen) or the node is told it is alone.
    Syncing {
        since_ms: u64,
        buffer: Vec<(u64, Event)>,
        fetch_at: Option<u64>,
    },
    /// Applying events; the next expected sequence number.
    Ready { next: u64 },
    /// Events from `next` on missed: asked at `since_ms` from Redis's log;
    /// what arrives meanwhile is buffered.
    CatchingUp {
        since_ms: u64,
        next: u64,
        buffer: Vec<(u64, Event)>,
        /// The Redis lifetime `next` counts in.
        epoch: String,
    },
}

/// A command waiting for its reply.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Pending {
    Register,
    Heartbeat,
    /// An event of a connection, published by `node`.
    Publish {
        node: u32,
        conn: Option<ConnId>,
        kind: Published,
    },
    Sync,
    Other,
    Fetch,
    Catchup,
}

/// What a publish was, for what its failure means to its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Published {
    /// An open: the connection is closed with 1013.
    Open,
    /// A text message: its sender gets the protocol's error.
    Text,
    /// Anything else: found when the node synchronises again.
    Other,
}

/// This node's cluster state, besides the routes it shares with the
/// single-process engine.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Cluster {
    policy: ClusterPolicy,
    /// Redis is reachable.
    up: bool,
    subscribed: bool,
    subscribe_sent: bool,
    /// The registry's epoch this node registered in.
    epoch: String,
    phase: Phase,
    /// Every connection of the cluster in the replica.
    pub members: ConnMap<Member>,
    /// Connections per node in the replica.
    owners: BTreeMap<u32, usize>,
    /// Nodes with a synchronised replica, as the events say.
    pub synced: BTreeSet<u32>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    next_heartbeat_ms: u64,
    /// Live nodes at the last heartbeat.
    live_nodes: usize,
    /// Nodes the replica holds but the registry lacks, since when.
    absent_since: BTreeMap<u32, u64>,
    /// Nodes a reap was asked for.
    reaping: BTreeSet<u32>,
    /// The next event expected when Redis was lost while applying events:
    /// where to catch up from once subscribed again.
    resume_from: Option<u64>,
    /// Other nodes whose `Gone` this node applied.
    nodes_gone: u64,
}

/// Cluster mode as `/health` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterStats {
    /// Redis is reachable.
    pub redis_up: bool,
    /// The node's replica is synchronised: it accepts connections.
    pub ready: bool,
    /// Live nodes at the last heartbeat.
    pub nodes: usize,
    /// This node's number (0 while not registered).
    pub node: u32,
    /// Other nodes removed from the cluster (dead or paused) since start.
    pub nodes_reaped: u64,
}

impl Cluster {
    /// A node not yet registered.
    pub fn new(policy: ClusterPolicy) -> Cluster {
        Cluster {
            policy,
            up: false,
            subscribed: false,
            subscribe_sent: false,
            epoch: String::new(),
            phase: Phase::Joining,
            members: ConnMap::default(),
            owners: BTreeMap::new(),
            synced: BTreeSet::new(),
            next_id: 1,
            pending: HashMap::new(),
            next_heartbeat_ms: u64::MAX,
            live_nodes: 0,
            absent_since: BTreeMap::new(),
            reaping: BTreeSet::new(),
            resume_from: None,
            nodes_gone: 0,
        }
    }

    /// Whether the node accepts new connections.
    pub fn ready(&self) -> bool {
        self.up && matches!(self.phase, Phase::Ready { .. })
    }

    /// Whether events can be published now.
    fn can_publish(&self, node: u32) -> bool {
        self.up && node != 0
    }

    /// `/health`'s view.
    pub fn stats(&self, node: u32) -> ClusterStats {
        ClusterStats {
            redis_up: self.up,
            ready: self.ready(),
            nodes: self.live_nodes,
            node,
            nodes_reaped: self.nodes_gone,
        }
    }

    /// When the node next has something due.
    pub fn next_timeout(&self) -> Option<u64> {
        let sync = match &self.phase {
            Phase::Syncing { since_ms, .. } | Phase::CatchingUp { since_ms, .. } => {
                Some(since_ms.saturating_add(self.sync_patience_ms()))
            }
            _ => None,
        };
        let heartbeat =
            (self.up && self.next_heartbeat_ms != u64::MAX).then_some(self.next_heartbeat_ms);
        heartbeat.into_iter().chain(sync).min()
    }

    /// How long a `Sync` may go unanswered before it is asked again.
    fn sync_patience_ms(&self) -> u64 {
        self.policy.node_timeout_ms + 2_000
    }

    pub fn insert_member(&mut self, conn: ConnId, member: Member) {
        if self.members.insert(conn, member).is_none() {
            *self.owners.entry(node_of(conn)).or_default() += 1;
        }
    }

    pub fn remove_member(&mut self, conn: ConnId) -> Option<Member> {
        let member = self.members.remove(&conn)?;
        let node = node_of(conn);
        if let Some(n) = self.owners.get_mut(&node) {
            *n -= 1;
            if *n == 0 {
                self.owners.remove(&node);
            }
        }
        Some(member)
    }

    /// Rebuilds the per-node counts after loading members.
    pub fn recount(&mut self) {
        self.owners.clear();
        for conn in self.members.keys() {
            *self.owners.entry(node_of(*conn)).or_default() += 1;
        }
    }
}

impl Engine {
    fn cluster_mut(&mut self) -> Option<&mut Cluster> {
        self.cluster.as_deref_mut()
    }

    /// Queues a bus command; returns its id.
    fn command(&mut self, command: BusCommand, pending: Pending) -> u64 {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return 0;
        };
        let id = cluster.next_id;
        cluster.next_id += 1;
        cluster.pending.insert(id, pending);
        self.out.outputs.push(Output::Bus { id, command });
        id
    }

    /// Publishes an event of local connection `conn` (`None` for the
    /// node's own). `false` if it cannot be published now.
    pub(crate) fn publish(&mut self, conn: Option<ConnId>, event: Event) -> bool {
        let node = self.out.node;
        if !self.cluster.as_ref().is_some_and(|c| c.can_publish(node)) {
            return false;
        }
        let kind = match event {
            Event::Open { .. } => Published::Open,
            Event::Text { .. } => Published::Text,
            _ => Published::Other,
        };
        let event = event.encode();
        let pending = Pending::Publish { node, conn, kind };
        self.command(BusCommand::Publish { node, event }, pending);
        true
    }

    /// One input from the bus.
    pub(crate) fn bus(&mut self, now: u64, input: BusInput) {
        let Some(cluster) = self.cluster_mut() else {
            log::debug!("bus input without cluster mode ignored");
            return;
        };
        match input {
            BusInput::Up => {
                cluster.up = true;
                let subscribe = !cluster.subscribe_sent;
                cluster.subscribe_sent = true;
                if subscribe {
                    self.out.outputs.push(Output::Bus {
                        id: 0,
                        command: BusCommand::Subscribe,
                    });
                }
                if self.out.node == 0 {
                    self.register();
                } else {
                    self.heartbeat(now);
                }
            }
            BusInput::Down => {
                cluster.up = false;
                cluster.subscribed = false;
                match cluster.phase {
                    Phase::Ready { next } | Phase::CatchingUp { next, .. } => {
                        cluster.resume_from = Some(next);
                    }
                    _ => {}
                }
                cluster.phase = Phase::Joining;
            }
            BusInput::Subscribed => {
                cluster.subscribed = true;
                cluster.phase = Phase::Joining;
                let up = cluster.up;
                match cluster.resume_from.take() {
                    Some(next) if up && self.out.node != 0 => {
                        self.start_catchup(now, next, Vec::new());
                    }
                    _ => self.start_sync(now),
                }
            }
            BusInput::Reply { id, reply } => {
                let Some(pending) = cluster.pending.remove(&id) else {
                    log::debug!("reply to unknown command {id}");
                    return;
                };
                self.reply(now, pending, reply);
            }
            BusInput::Message { payload } => {
                for (seq, event) in parse_events(&payload) {
                    self.delivered(now, seq, event);
                }
            }
        }
    }

    fn register(&mut self) {
        let epoch = format!("{:016x}", self.local_rng.next_u64());
        self.command(BusCommand::Register { epoch }, Pending::Register);
    }

    fn heartbeat(&mut self, now: u64) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        cluster.next_heartbeat_ms = now.saturating_add(cluster.policy.heartbeat_ms());
        if self.out.node == 0 {
            return;
        }
        let epoch = cluster.epoch.clone();
        let fresh_epoch = format!("{:016x}", self.local_rng.next_u64());
        let command = BusCommand::Heartbeat {
            node: self.out.node,
            epoch,
            fresh_epoch,
        };
        self.command(command, Pending::Heartbeat);
    }

    /// Asks for the state, if registered and subscribed and not already
    /// asking.
    fn start_sync(&mut self, now: u64) {
        let node = self.out.node;
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        if !(cluster.up && cluster.subscribed && node != 0) {
            return;
        }
        cluster.resume_from = None;
        cluster.phase = Phase::Syncing {
            since_ms: now,
            buffer: Vec::new(),
            fetch_at: None,
        };
        let sync = |alone| Event::Sync { node, alone }.encode();
        let command = BusCommand::Sync {
            node,
            alone: sync(true),
            not_alone: sync(false),
        };
        self.command(command, Pending::Sync);
    }

    /// Reads the events from `next` on back from Redis's log; `buffer`
    /// holds what already arrived after them.
    fn start_catchup(&mut self, now: u64, next: u64, buffer: Vec<(u64, Event)>) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        log::info!("cluster: reading back the events from {next} on");
        cluster.phase = Phase::CatchingUp {
            since_ms: now,
            next,
            buffer,
            epoch: cluster.epoch.clone(),
        };
        self.command(BusCommand::Catchup { from: next }, Pending::Catchup);
    }

    /// Redis's log from the first event missed on: applied as if delivered
    /// then what was buffered; the whole state is asked for instead if the
    /// log does not reach back so far, or is another Redis lifetime's.
    fn caught_up(&mut self, now: u64, reply: BusReply) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let Phase::CatchingUp {
            next,
            buffer,
            epoch,
            ..
        } = &mut cluster.phase
        else {
            return;
        };
        let (next, buffer, epoch) = (*next, std::mem::take(buffer), std::mem::take(epoch));
        let log = match &reply {
            BusReply::Array(a) if a.len() == 2 && a[0].text().as_deref() == Some(&*epoch) => {
                match &a[1] {
                    BusReply::Array(messages) => {
                        messages.iter().filter_map(BusReply::text).collect()
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let mut events: Vec<(u64, Event)> = Vec::new();
        for message in &log {
            events.extend(parse_events(message));
        }
        if events.first().is_none_or(|(seq, _)| *seq > next) {
            log::info!("cluster: the events missed are no longer kept; asking for the state");
            return self.start_sync(now);
        }
        cluster.phase = Phase::Ready { next };
        for (seq, event) in events.into_iter().chain(buffer) {
            self.delivered(now, seq, event);
            if !matches!(
                self.cluster.as_deref().map(|c| &c.phase),
                Some(Phase::Ready { .. })
            ) {
                return;
            }
        }
        log::info!("cluster: caught up");
        self.reconcile(now);
    }

    fn reply(&mut self, now: u64, pending: Pending, reply: BusReply) {
        let fenced = matches!(&reply, BusReply::Error(e) if e.contains("FENCED"));
        match pending {
            Pending::Register => match &reply {
                BusReply::Array(a) if a.len() == 2 => {
                    let (Some(node), Some(epoch)) = (a[0].int(), a[1].text()) else {
                        return log::warn!("cluster: bad register reply {reply:?}");
                    };
                    self.out.node = u32::try_from(node).unwrap_or(0);
                    log::info!("cluster: joined as node {node}");
                    if let Some(c) = self.cluster_mut() {
                        c.epoch = epoch;
                    }
                    self.heartbeat(now);
                    self.start_sync(now);
                }
                _ => {
                    log::warn!("cluster: register failed: {reply:?}");
                    if let Some(c) = self.cluster_mut() {
                        c.next_heartbeat_ms = now;
                    }
                }
            },
            Pending::Heartbeat => self.heartbeat_reply(now, reply),
            Pending::Publish { node, conn, kind } => {
                if node != self.out.node {
                    return;
                }
                if fenced {
                    return self.fenced(now);
                }
                if reply.int().is_some() {
                    return;
                }
                log::debug!("cluster: publish failed: {reply:?}");
                let Some(conn) = conn.filter(|c| self.conns.contains_key(c)) else {
                    return;
                };
                match kind {
                    Published::Open => self.close_local(conn, CloseReason::TryAgainLater),
                    Published::Text => self.unavailable(now, conn),
                    Published::Other => {}
                }
            }
            Pending::Sync => {
                if fenced {
                    return self.fenced(now);
                }
                if reply.int().is_none() {
                    log::debug!("cluster: sync failed: {reply:?}");
                    if let Some(c) = self.cluster_mut() {
                        c.phase = Phase::Joining;
                    }
                }
            }
            Pending::Catchup => self.caught_up(now, reply),
            Pending::Fetch => match reply {
                BusReply::Text(snapshot) => self.load(now, &snapshot),
                _ => {
                    log::info!("cluster: snapshot missing, asking again");
                    self.start_sync(now);
                }
            },
            Pending::Other => {
                if fenced {
                    self.fenced(now);
                }
            }
        }
    }

    fn heartbeat_reply(&mut self, now: u64, reply: BusReply) {
        let BusReply::Array(a) = reply else {
            return log::debug!("cluster: heartbeat failed: {reply:?}");
        };
        let status = a.first().and_then(BusReply::text).unwrap_or_default();
        if status == "fenced" {
            return self.fenced(now);
        }
        let (Some(epoch), Some(BusReply::Array(live)), Some(BusReply::Array(stale))) =
            (a.get(1).and_then(BusReply::text), a.get(2), a.get(3))
        else {
            return log::warn!("cluster: bad heartbeat reply");
        };
        let ids = |v: &Vec<BusReply>| -> BTreeSet<u32> {
            v.iter()
                .filter_map(BusReply::int)
                .filter_map(|n| u32::try_from(n).ok())
                .collect()
        };
        let (live, stale) = (ids(live), ids(stale));
        let me = self.out.node;
        let Some(cluster) = self.cluster_mut() else {
            return;
        };
        cluster.live_nodes = live.len();
        if status == "restarted" {
            log::warn!("cluster: Redis lost its data; registering again and resynchronising");
            cluster.epoch = epoch;
            // The events it would catch up on were another Redis's.
            cluster.resume_from = None;
            self.start_sync(now);
            return;
        }
        let Some(cluster) = self.cluster_mut() else {
            return;
        };
        let timeout = cluster.policy.node_timeout_ms;
        let known: BTreeSet<u32> = cluster
            .owners
            .keys()
            .chain(cluster.synced.iter())
            .copied()
            .collect();
        cluster.absent_since.retain(|n, _| !live.contains(n));
        let mut dead = Vec::new();
        for &n in known.iter().chain(stale.iter()) {
            if n == me || live.contains(&n) || cluster.reaping.contains(&n) {
                continue;
            }
            let since = *cluster.absent_since.entry(n).or_insert(now);
            if stale.contains(&n) || now.saturating_sub(since) >= timeout {
                cluster.reaping.insert(n);
                dead.push(n);
            }
        }
        for n in dead {
            log::info!("cluster: node {n} is silent past the timeout: reaping it");
            let event = Event::Gone { node: n, now }.encode();
            let command = BusCommand::Reap {
                dead: n,
                timeout_ms: timeout,
                event,
            };
            self.command(command, Pending::Other);
        }
    }

    /// Heartbeats and a `Sync` that went unanswered.
    pub(crate) fn cluster_timeout(&mut self, now: u64) {
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        if cluster.up && cluster.next_heartbeat_ms <= now {
            if self.out.node == 0 {
                let registering = cluster
                    .pending
                    .values()
                    .any(|p| matches!(p, Pending::Register));
                if let Some(c) = self.cluster_mut() {
                    c.next_heartbeat_ms = now.saturating_add(c.policy.heartbeat_ms());
                }
                // Asked again only once the last ask failed: two answers
                // would be two node numbers, the first left to be reaped.
                if !registering {
                    self.register();
                }
            } else {
                self.heartbeat(now);
                if matches!(
                    self.cluster.as_deref().map(|c| &c.phase),
                    Some(Phase::Joining)
                ) {
                    self.start_sync(now);
                }
            }
        }
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        if let Phase::Syncing { since_ms, .. } | Phase::CatchingUp { since_ms, .. } = cluster.phase
            && since_ms.saturating_add(cluster.sync_patience_ms()) <= now
        {
            log::warn!("cluster: no state received; asking again");
            self.start_sync(now);
        }
    }

    /// Event `seq` arrived.
    fn delivered(&mut self, now: u64, seq: u64, event: Event) {
        let me = self.out.node;
        let Some(cluster) = self.cluster_mut() else {
            return;
        };
        match &mut cluster.phase {
            Phase::Joining => {}
            Phase::CatchingUp { buffer, .. } => {
                if buffer.len() >= MAX_BUFFERED {
                    return self.start_sync(now);
                }
                buffer.push((seq, event));
            }
            Phase::Ready { next } => {
                if seq < *next {
                    return;
                }
                if seq > *next {
                    log::warn!("cluster: events {}..{seq} missed", *next);
                    let next = *next;
                    return self.start_catchup(now, next, vec![(seq, event)]);
                }
                *next = next.saturating_add(1);
                self.apply(now, seq, event);
            }
            Phase::Syncing {
                buffer, fetch_at, ..
            } => {
                if buffer.len() >= MAX_BUFFERED {
                    return self.start_sync(now);
                }
                match event {
                    Event::Sync { node, alone: true } if node == me => {
                        let buffered = std::mem::take(buffer);
                        cluster.phase = Phase::Ready {
                            next: seq.saturating_add(1),
                        };
                        log::info!("cluster: no other node has the state; going on from ours");
                        for (s, e) in buffered {
                            self.apply(now, s, e);
                        }
                        self.apply(now, seq, Event::Sync { node, alone: true });
                        self.reconcile(now);
                    }
                    Event::Stored { node, at } if node == me && fetch_at.is_none() => {
                        *fetch_at = Some(at);
                        buffer.push((seq, Event::Stored { node, at }));
                        self.command(BusCommand::Fetch { to: me }, Pending::Fetch);
                    }
                    event => buffer.push((seq, event)),
                }
            }
        }
    }

    /// Loads the snapshot stored for this node, then applies what came
    /// after it.
    fn load(&mut self, now: u64, text: &str) {
        let Some(cluster) = self.cluster_mut() else {
            return;
        };
        let Phase::Syncing {
            buffer,
            fetch_at: Some(at),
            ..
        } = &mut cluster.phase
        else {
            return;
        };
        let (at, buffered) = (*at, std::mem::take(buffer));
        let protocol_of = |path: &str| {
            let i = *self.route_index.get(path)?;
            Some(self.routes[i].protocol)
        };
        let snapshot = serde_json::from_str::<Snapshot>(text)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                s.check(self.config.max_rooms_per_conn, protocol_of)
                    .map(|()| s)
            });
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                log::warn!("cluster: unusable snapshot ({e}); asking again");
                return self.start_sync(now);
            }
        };
        self.tell_differences(now, &snapshot);
        self.load_replica(snapshot);
        let mut next = at.saturating_add(1);
        for (seq, event) in buffered {
            if seq < next {
                continue;
            }
            if seq > next {
                log::warn!("cluster: events missed while synchronising; asking again");
                return self.start_sync(now);
            }
            next = next.saturating_add(1);
            self.apply(now, seq, event);
        }
        if let Some(c) = self.cluster_mut() {
            c.phase = Phase::Ready { next };
        }
        log::info!("cluster: state loaded (as of event {at})");
        self.reconcile(now);
    }

    /// Before a snapshot replaces the replica: the members it holds and
    /// the replica does not, or the other way round, came or went by
    /// events this node never saw (a close a node published once it went
    /// on alone after Redis restarted, before this one had subscribed
    /// again; an open Redis delivered to some nodes only before it went
    /// down). Their closes, then their opens, are applied to the old
    /// replica, so this node's clients are told as the events would have
    /// told them; the snapshot then replaces what that changed.
    fn tell_differences(&mut self, now: u64, snapshot: &Snapshot) {
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        if self.conns.is_empty() {
            return;
        }
        let kept: BTreeSet<ConnId> = snapshot.members().map(|(c, _, _)| c).collect();
        let mut gone: Vec<ConnId> = cluster
            .members
            .keys()
            .filter(|c| !kept.contains(c))
            .copied()
            .collect();
        gone.sort_unstable();
        let mut came: Vec<(ConnId, Protocol, String, Member)> = snapshot
            .members()
            .filter(|(c, _, _)| !cluster.members.contains_key(c))
            .map(|(c, r, m)| (c, r.protocol, r.path.clone(), m.clone()))
            .collect();
        came.sort_unstable_by_key(|(c, ..)| *c);
        for conn in gone {
            self.apply_close(conn, now);
        }
        for (conn, protocol, path, member) in came {
            self.apply_open(conn, protocol, path, member.query, member.identity, now);
        }
    }

    /// Applies event `seq` to the replica; keeps the outputs for this
    /// node's connections.
    fn apply(&mut self, now: u64, seq: u64, event: Event) {
        let me = self.out.node;
        match event {
            Event::Open {
                conn,
                protocol,
                path,
                query,
                identity,
                now: at,
            } => self.apply_open(conn, protocol, path, query, identity, at),
            Event::Text {
                conn,
                text,
                now: at,
            } => {
                let Some(cluster) = self.cluster.as_deref() else {
                    return;
                };
                let Some(m) = cluster.members.get(&conn) else {
                    return;
                };
                let route = &mut self.routes[m.route];
                let mut cx = Cx::new(
                    &mut self.out,
                    &mut self.rng,
                    &self.config,
                    at,
                    route.protocol,
                );
                cx.identity = m.identity.as_ref();
                route.text(conn, &text, &mut cx);
            }
            Event::Identity { conn, identity } => {
                if let Some(m) = self.cluster_mut().and_then(|c| c.members.get_mut(&conn)) {
                    m.identity = Some(identity);
                }
            }
            Event::Close { conn, now: at } => self.apply_close(conn, at),
            Event::Gone { node, now: at } => {
                if node == me {
                    self.fenced(now);
                    return;
                }
                let Some(cluster) = self.cluster_mut() else {
                    return;
                };
                let mut gone: Vec<ConnId> = cluster
                    .members
                    .keys()
                    .filter(|c| node_of(**c) == node)
                    .copied()
                    .collect();
                gone.sort_unstable();
                cluster.synced.remove(&node);
                cluster.absent_since.remove(&node);
                cluster.reaping.remove(&node);
                cluster.nodes_gone += 1;
                log::info!("cluster: node {node} gone with {} connections", gone.len());
                for conn in gone {
                    self.apply_close(conn, at);
                }
            }
            Event::Sync { node, alone } => {
                let Some(cluster) = self.cluster_mut() else {
                    return;
                };
                cluster.synced.remove(&node);
                let responder = cluster.synced.first().copied();
                if alone {
                    cluster.synced.insert(node);
                } else if node != me && responder == Some(me) {
                    let snapshot = self.snapshot();
                    let event = Event::Stored { node, at: seq }.encode();
                    let command = BusCommand::Store {
                        node: me,
                        to: node,
                        snapshot,
                        event,
                    };
                    log::info!("cluster: sending the state to node {node}");
                    self.command(command, Pending::Other);
                }
            }
            Event::Stored { node, .. } => {
                if let Some(c) = self.cluster_mut() {
                    c.synced.insert(node);
                }
            }
        }
    }

    fn apply_open(
        &mut self,
        conn: ConnId,
        protocol: Protocol,
        path: String,
        query: String,
        identity: Option<Identity>,
        at: u64,
    ) {
        let mine = node_of(conn) == self.out.node;
        if self
            .cluster
            .as_deref()
            .is_some_and(|c| c.members.contains_key(&conn))
        {
            return log::warn!("cluster: second open of {conn:?} ignored");
        }
        let route = self.route_index_for(path, protocol);
        if self.routes[route].protocol != protocol {
            if mine {
                self.close_local(local_of(conn), CloseReason::RouteMismatch);
            }
            return;
        }
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, at, protocol);
        cx.identity = identity.as_ref();
        match self.routes[route].open(conn, &query, &mut cx) {
            Ok(()) => {
                if let Some(c) = self.cluster_mut() {
                    c.insert_member(
                        conn,
                        Member {
                            route,
                            identity,
                            query,
                        },
                    );
                }
            }
            Err(reason) => {
                if mine {
                    self.close_local(local_of(conn), reason);
                }
            }
        }
    }

    fn apply_close(&mut self, conn: ConnId, at: u64) {
        let Some(member) = self.cluster_mut().and_then(|c| c.remove_member(conn)) else {
            return;
        };
        let route = &mut self.routes[member.route];
        let mut cx = Cx::new(
            &mut self.out,
            &mut self.rng,
            &self.config,
            at,
            route.protocol,
        );
        route.close(conn, &mut cx);
    }

    /// After synchronising: publishes the closes the replica missed, and
    /// closes with 1012 the connections the replica lost.
    fn reconcile(&mut self, now: u64) {
        let me = self.out.node;
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        let mut missed: Vec<ConnId> = cluster
            .members
            .keys()
            .filter(|c| node_of(**c) == me && !self.conns.contains_key(&local_of(**c)))
            .copied()
            .collect();
        missed.sort_unstable();
        let opening: BTreeSet<ConnId> = cluster
            .pending
            .values()
            .filter_map(|p| match p {
                Pending::Publish {
                    conn: Some(c),
                    kind: Published::Open,
                    ..
                } => Some(*c),
                _ => None,
            })
            .collect();
        let mut lost: Vec<ConnId> = self
            .conns
            .keys()
            .filter(|c| !cluster.members.contains_key(&global(me, **c)) && !opening.contains(c))
            .copied()
            .collect();
        lost.sort_unstable();
        for conn in missed {
            self.publish(None, Event::Close { conn, now });
        }
        for conn in lost {
            log::info!("cluster: {conn:?} lost from the replica; closing it with 1012");
            self.close_local(conn, CloseReason::ServiceRestart);
        }
    }

    /// This node was reaped: close every connection with 1012, forget the
    /// replica, join again under a new number.
    fn fenced(&mut self, now: u64) {
        if self.out.node == 0 {
            return;
        }
        log::warn!(
            "cluster: node {} was removed (silent past the node timeout); closing its connections and joining again",
            self.out.node
        );
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.close_local(conn, CloseReason::ServiceRestart);
        }
        self.out.node = 0;
        self.reset_replica();
        if let Some(c) = self.cluster_mut() {
            c.phase = Phase::Joining;
            c.resume_from = None;
            c.next_heartbeat_ms = now;
        }
        self.register();
    }

    /// Closes local connection `conn` without publishing anything (the
    /// replica does not hold it, or is being dropped).
    pub(crate) fn close_local(&mut self, conn: ConnId, reason: CloseReason) {
        if self.forget(conn).is_some() {
            self.out.outputs.push(Output::Close { conn, reason });
        }
    }

    /// A text message of local connection `conn`, admitted: published;
    /// while Redis is away, answered here if it only asks something of
    /// this node (a ping, a malformed message), else refused with the
    /// protocol's error.
    pub(crate) fn cluster_text(&mut self, now: u64, conn: ConnId, text: &str) {
        let g = global(self.out.node, conn);
        let event = Event::Text {
            conn: g,
            text: text.to_owned(),
            now,
        };
        if self.publish(Some(conn), event) {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let route = &mut self.routes[c.route];
        if !route.is_local(text) {
            return self.unavailable(now, conn);
        }
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
        cx.identity = c.auth.as_ref().map(|a| &a.identity);
        route.text(g, text, &mut cx);
    }

    /// Tells `conn` its message could not be handled: Redis is away.
    pub(crate) fn unavailable(&mut self, now: u64, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let route = &self.routes[c.route];
        let g = global(self.out.node, conn);
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
        route.send_error(g, UNAVAILABLE, &mut cx);
    }

    /// The cluster's view for `/health`, in cluster mode.
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        self.cluster.as_deref().map(|c| c.stats(self.out.node))
    }

    /// Whether the engine accepts new connections: always, except in
    /// cluster mode while Redis is away or the replica is not
    /// synchronised (the server answers upgrades with `503`).
    pub fn accepting(&self) -> bool {
        self.cluster.as_deref().is_none_or(Cluster::ready)
    }
}

/// The events of one message: `SEQ JSON`, then one `JSON` a line numbered
/// on from `SEQ`. A malformed event is skipped (and seen as a gap by what
/// follows); a malformed message gives none.
fn parse_events(message: &str) -> Vec<(u64, Event)> {
    let Some((first, events)) = message.split_once(' ') else {
        log::warn!("cluster: malformed message ignored: {message:.80}");
        return Vec::new();
    };
    let Ok(first) = first.parse::<u64>() else {
        log::warn!("cluster: malformed message ignored: {message:.80}");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, json) in (0..).zip(events.split('\n')) {
        let seq = first.saturating_add(i);
        match serde_json::from_str(json) {
            Ok(event) => out.push((seq, event)),
            Err(e) => log::warn!("cluster: malformed event {seq} ignored ({e})"),
        }
    }
    out
}
