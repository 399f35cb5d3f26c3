//! An in-process model of Redis as cluster mode uses it: the scripts of
//! `src/server/redis/scripts.rs` applied atomically, one event channel
//! delivered in publish order, and each node's two connections (replies,
//! messages) as queues the test drains in any interleaving.

use roomd::engine::{BusCommand, BusInput, BusReply, Engine, Input, Output};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// One node: its engine and what Redis has for it, not yet delivered.
pub struct Node {
    pub engine: Engine,
    /// Commands sent, not yet run by Redis.
    pub commands: VecDeque<(u64, BusCommand)>,
    /// Replies, in order.
    pub replies: VecDeque<BusInput>,
    /// Published events, in order.
    pub messages: VecDeque<BusInput>,
    pub subscribed: bool,
    /// Reachable: a dead or paused node gets nothing and sends nothing.
    pub alive: bool,
    /// Every output the engine gave besides bus commands, with the time.
    pub outputs: Vec<Output>,
}

/// Redis's data.
#[derive(Default)]
pub struct Redis {
    pub node_seq: u64,
    pub nodes: BTreeMap<u32, u64>,
    pub epoch: Option<String>,
    pub synced: BTreeSet<u32>,
    pub seq: u64,
    pub snaps: HashMap<u32, String>,
    /// The time of the last heartbeat of any node (0: none yet).
    pub beat: u64,
    /// Every event published, in order.
    pub log: Vec<String>,
}

/// Redis and the nodes on it.
pub struct Cluster {
    pub redis: Redis,
    pub nodes: Vec<Node>,
    pub timeout_ms: u64,
}

impl Cluster {
    pub fn new(timeout_ms: u64) -> Cluster {
        Cluster {
            redis: Redis::default(),
            nodes: Vec::new(),
            timeout_ms,
        }
    }

    /// Adds a node (Redis reachable at once); its index.
    pub fn add(&mut self, engine: Engine, now: u64) -> usize {
        self.nodes.push(Node {
            engine,
            commands: VecDeque::new(),
            replies: VecDeque::new(),
            messages: VecDeque::new(),
            subscribed: false,
            alive: true,
            outputs: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.input(i, now, Input::Bus(BusInput::Up));
        i
    }

    /// Feeds node `i` an input and collects its outputs.
    pub fn input(&mut self, i: usize, now: u64, input: Input) {
        let node = &mut self.nodes[i];
        node.engine.handle(now, input);
        for output in node.engine.drain_outputs() {
            match output {
                Output::Bus { id, command } => node.commands.push_back((id, command)),
                other => node.outputs.push(other),
            }
        }
    }

    /// Runs node `i`'s oldest command in Redis; `false` if none. Like
    /// the server, publishes waiting together go out as one message.
    pub fn run_command(&mut self, i: usize, now: u64) -> bool {
        let Some((id, command)) = self.nodes[i].commands.pop_front() else {
            return false;
        };
        if let BusCommand::Publish { node, event } = &command {
            let mut batch = vec![(id, event.clone())];
            while let Some((next, BusCommand::Publish { node: n, event })) =
                self.nodes[i].commands.front()
                && n == node
            {
                batch.push((*next, event.clone()));
                self.nodes[i].commands.pop_front();
            }
            if self.fenced(*node) {
                for (id, _) in batch {
                    let reply = BusReply::Error("FENCED node not registered".into());
                    self.nodes[i]
                        .replies
                        .push_back(BusInput::Reply { id, reply });
                }
                return true;
            }
            let events: Vec<String> = batch.iter().map(|(_, e)| e.clone()).collect();
            let first = self.redis.seq + 1;
            self.redis.seq += events.len() as u64;
            self.announce(format!("{first} {}", events.join("\n")), &events, first);
            for (k, (id, _)) in batch.into_iter().enumerate() {
                let reply = BusReply::Int((first + k as u64) as i64);
                self.nodes[i]
                    .replies
                    .push_back(BusInput::Reply { id, reply });
            }
            return true;
        }
        let reply = self.exec(i, now, command);
        if let Some(reply) = reply {
            self.nodes[i]
                .replies
                .push_back(BusInput::Reply { id, reply });
        }
        true
    }

    /// Node `i` loses its connections to Redis for a moment: the messages
    /// on their way to it are lost, commands not yet run wait, and it
    /// subscribes again.
    pub fn blip(&mut self, i: usize, now: u64) {
        self.nodes[i].messages.clear();
        self.input(i, now, Input::Bus(BusInput::Down));
        self.input(i, now, Input::Bus(BusInput::Up));
        self.nodes[i].messages.push_back(BusInput::Subscribed);
    }

    /// Redis restarts empty: every live node loses both connections (the
    /// commands not yet answered fail, the messages on their way are
    /// lost) and is told Redis is down; [`Cluster::reconnect`] brings
    /// each back.
    pub fn restart(&mut self, now: u64) {
        self.redis = Redis {
            log: std::mem::take(&mut self.redis.log),
            ..Redis::default()
        };
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            let node = &mut self.nodes[i];
            node.messages.clear();
            node.subscribed = false;
            let mut failed: Vec<u64> = node.commands.drain(..).map(|(id, _)| id).collect();
            for reply in node.replies.drain(..) {
                if let BusInput::Reply { id, .. } = reply {
                    failed.push(id);
                }
            }
            failed.sort_unstable();
            self.input(i, now, Input::Bus(BusInput::Down));
            for id in failed {
                let reply = BusReply::Failed;
                self.input(i, now, Input::Bus(BusInput::Reply { id, reply }));
            }
        }
    }

    /// Node `i` connects to Redis again and its subscription is renewed.
    pub fn reconnect(&mut self, i: usize, now: u64) {
        self.input(i, now, Input::Bus(BusInput::Up));
        self.nodes[i].subscribed = true;
        self.nodes[i].messages.push_back(BusInput::Subscribed);
    }

    /// Delivers node `i`'s oldest reply (`messages` false) or message.
    pub fn deliver(&mut self, i: usize, now: u64, messages: bool) -> bool {
        let node = &mut self.nodes[i];
        let queue = if messages {
            &mut node.messages
        } else {
            &mut node.replies
        };
        let Some(input) = queue.pop_front() else {
            return false;
        };
        self.input(i, now, Input::Bus(input));
        true
    }

    /// Runs and delivers everything of live nodes, in a fixed order,
    /// until nothing moves.
    pub fn settle(&mut self, now: u64) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].alive {
                    continue;
                }
                while self.run_command(i, now) {
                    moved = true;
                }
                while self.deliver(i, now, false) {
                    moved = true;
                }
                while self.deliver(i, now, true) {
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn publish(&mut self, payload: &str) -> BusReply {
        self.redis.seq += 1;
        let seq = self.redis.seq;
        self.announce(format!("{seq} {payload}"), &[payload.to_string()], seq);
        BusReply::Int(seq as i64)
    }

    /// Logs `events` (numbered from `first`) and delivers `message` to
    /// every subscribed live node.
    fn announce(&mut self, message: String, events: &[String], first: u64) {
        for (k, e) in events.iter().enumerate() {
            self.redis.log.push(format!("{} {e}", first + k as u64));
        }
        for node in &mut self.nodes {
            if node.subscribed && node.alive {
                node.messages.push_back(BusInput::Message {
                    payload: message.clone(),
                });
            }
        }
    }

    fn fenced(&self, node: u32) -> bool {
        !self.redis.nodes.contains_key(&node)
    }

    fn exec(&mut self, i: usize, now: u64, command: BusCommand) -> Option<BusReply> {
        let fence = || BusReply::Error("FENCED node not registered".into());
        let ids =
            |v: Vec<u32>| BusReply::Array(v.into_iter().map(|n| BusReply::Int(n.into())).collect());
        Some(match command {
            BusCommand::Subscribe => {
                self.nodes[i].subscribed = true;
                self.nodes[i].messages.push_back(BusInput::Subscribed);
                return None;
            }
            BusCommand::Register { epoch } => {
                let epoch = self.redis.epoch.get_or_insert(epoch).clone();
                self.redis.node_seq += 1;
                let node = self.redis.node_seq as u32;
                self.redis.nodes.insert(node, now);
                BusReply::Array(vec![BusReply::Int(node.into()), BusReply::Text(epoch)])
            }
            BusCommand::Heartbeat {
                node,
                epoch,
                fresh_epoch,
            } => {
                // No node beat for a timeout: Redis was out of reach, every
                // entry starts afresh.
                let last = std::mem::replace(&mut self.redis.beat, now);
                if last > 0 && now.saturating_sub(last) > self.timeout_ms {
                    self.redis.nodes.values_mut().for_each(|t| *t = now);
                }
                let mut status = "ok";
                if self.redis.epoch.as_deref() != Some(&epoch) {
                    self.redis.epoch.get_or_insert(fresh_epoch);
                    status = "restarted";
                    self.redis.node_seq = self.redis.node_seq.max(node.into());
                } else if self.fenced(node) {
                    return Some(BusReply::Array(vec![BusReply::Text("fenced".into())]));
                }
                self.redis.nodes.insert(node, now);
                let since = now.saturating_sub(self.timeout_ms);
                let live = self
                    .redis
                    .nodes
                    .iter()
                    .filter(|(_, t)| **t >= since)
                    .map(|(n, _)| *n)
                    .collect();
                let stale = self
                    .redis
                    .nodes
                    .iter()
                    .filter(|(_, t)| **t < since)
                    .map(|(n, _)| *n)
                    .collect();
                BusReply::Array(vec![
                    BusReply::Text(status.into()),
                    BusReply::Text(self.redis.epoch.clone().unwrap_or_default()),
                    ids(live),
                    ids(stale),
                ])
            }
            BusCommand::Publish { .. } => unreachable!("run_command batches publishes"),
            BusCommand::Sync {
                node,
                alone,
                not_alone,
            } => {
                if self.fenced(node) {
                    return Some(fence());
                }
                self.redis.synced.remove(&node);
                let payload = if self.redis.synced.is_empty() {
                    self.redis.synced.insert(node);
                    alone
                } else {
                    not_alone
                };
                self.publish(&payload)
            }
            BusCommand::Store {
                node,
                to,
                snapshot,
                event,
            } => {
                if self.fenced(node) {
                    return Some(fence());
                }
                self.redis.snaps.insert(to, snapshot);
                self.redis.synced.insert(to);
                self.publish(&event)
            }
            BusCommand::Catchup { from } => {
                let seq_of = |m: &String| m.split(' ').next().and_then(|s| s.parse::<u64>().ok());
                // As the script: from the last entry holding `from` or an
                // earlier event on (all of them if none does).
                let start = self
                    .redis
                    .log
                    .iter()
                    .rposition(|m| seq_of(m).is_some_and(|s| s <= from))
                    .unwrap_or(0);
                let kept = self.redis.log[start..]
                    .iter()
                    .map(|m| BusReply::Text(m.clone()))
                    .collect();
                let epoch = self.redis.epoch.clone().unwrap_or_default();
                BusReply::Array(vec![BusReply::Text(epoch), BusReply::Array(kept)])
            }
            BusCommand::Fetch { to } => match self.redis.snaps.get(&to) {
                Some(s) => BusReply::Text(s.clone()),
                None => BusReply::Nil,
            },
            BusCommand::Reap {
                dead,
                timeout_ms,
                event,
            } => {
                if self
                    .redis
                    .nodes
                    .get(&dead)
                    .is_some_and(|t| *t >= now.saturating_sub(timeout_ms))
                {
                    return Some(BusReply::Int(0));
                }
                self.redis.nodes.remove(&dead);
                self.redis.synced.remove(&dead);
                self.publish(&event)
            }
        })
    }
}
