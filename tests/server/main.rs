//! Tests over real loopback sockets: an in-process server on 127.0.0.1:0
//! or the `roomd` binary itself, every wait bounded by a timeout.

// End-to-end tests wait on real time.
#![allow(clippy::disallowed_methods)]

mod live;

mod auth;
mod binary;
mod browser;
mod cluster;
mod connection_churn;
mod dist_units;
mod fd_limit;
mod hostile_http;
mod hostile_websocket;
mod http_endpoints;
mod journal_e2e;
mod protocols;
mod reads;
mod redis;
mod reuse_port;
mod seed_env;
mod socket_activation;
mod tls;
mod upgrade;
mod websocket_conformance;
mod websocket_limits;
