//! The replica as one JSON document: what a synchronised node stores for
//! a joining one, and what that one loads.

use super::node::Member;
use crate::engine::rng::Rng;
use crate::engine::route::Route;
use crate::engine::{ConnId, ConnMap, Engine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Everything the nodes replicate.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// Every route with its rooms.
    routes: Vec<Route>,
    /// The rooms' randomness.
    rng: Rng,
    /// Every connection of the cluster.
    members: Vec<(ConnId, Member)>,
    /// The synchronised nodes.
    synced: BTreeSet<u32>,
}

impl Snapshot {
    /// Checks every route's indexes, and that each speaks the protocol
    /// `protocol_of` (the engine's routes) gives its path, if any.
    pub fn check(
        &self,
        max_rooms: usize,
        protocol_of: impl Fn(&str) -> Option<crate::protocol::Protocol>,
    ) -> Result<(), String> {
        for route in &self.routes {
            route.check_restored(max_rooms)?;
            if protocol_of(&route.path).is_some_and(|p| p != route.protocol) {
                return Err(format!("{}: another protocol here", route.path));
            }
        }
        Ok(())
    }

    /// Every connection it holds, with its route (a member on no route,
    /// which loading drops, is left out).
    pub fn members(&self) -> impl Iterator<Item = (ConnId, &Route, &Member)> + '_ {
        self.members
            .iter()
            .filter_map(|(conn, m)| Some((*conn, self.routes.get(m.route)?, m)))
    }
}

impl Engine {
    /// The replica, serialised.
    pub(crate) fn snapshot(&self) -> String {
        let Some(cluster) = self.cluster.as_deref() else {
            return String::new();
        };
        let mut members: Vec<(ConnId, Member)> = cluster
            .members
            .iter()
            .map(|(c, m)| (*c, m.clone()))
            .collect();
        members.sort_unstable_by_key(|(c, _)| *c);
        let snapshot = SnapshotRef {
            routes: &self.routes,
            rng: &self.rng,
            members,
            synced: &cluster.synced,
        };
        serde_json::to_string(&snapshot).unwrap_or_default()
    }

    /// Replaces the replica with `snapshot`. Routes keep their indexes
    /// (the node's connections point at them): a route the snapshot has
    /// takes its state, one it lacks is emptied, one only it has is
    /// added.
    pub(crate) fn load_replica(&mut self, snapshot: Snapshot) {
        self.reset_replica();
        let mut index = Vec::with_capacity(snapshot.routes.len());
        for route in snapshot.routes {
            let i = match self.route_index.get(&route.path) {
                Some(&i) => {
                    self.routes[i] = route;
                    i
                }
                None => {
                    self.route_index
                        .insert(route.path.clone(), self.routes.len());
                    self.routes.push(route);
                    self.routes.len() - 1
                }
            };
            index.push(i);
        }
        self.rng = snapshot.rng;
        self.recount_gauges();
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        cluster.members = ConnMap::default();
        for (conn, mut member) in snapshot.members {
            let Some(&route) = index.get(member.route) else {
                log::warn!("cluster: snapshot member {conn:?} on no route; dropped");
                continue;
            };
            member.route = route;
            cluster.members.insert(conn, member);
        }
        cluster.recount();
        cluster.synced = snapshot.synced;
    }

    /// Empties every route and forgets every member.
    pub(crate) fn reset_replica(&mut self) {
        for route in &mut self.routes {
            *route = Route::new(route.path.clone(), route.protocol);
        }
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.members = ConnMap::default();
            cluster.recount();
            cluster.synced.clear();
        }
        self.recount_gauges();
    }

    /// Sets the rooms and users gauges from the routes (after they were
    /// replaced).
    fn recount_gauges(&mut self) {
        for stats in &mut self.out.per_protocol {
            stats.rooms = 0;
            stats.users = 0;
        }
        for route in &self.routes {
            let stats = &mut self.out.per_protocol[route.protocol.index()];
            stats.rooms += route.room_count() as u64;
            stats.users += route.stats().users;
        }
    }
}

/// [`Snapshot`] borrowing the engine's parts.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    routes: &'a [Route],
    rng: &'a Rng,
    members: Vec<(ConnId, Member)>,
    synced: &'a BTreeSet<u32>,
}
