//! Opening the listening sockets.
//!
//! Built with `socket2` rather than `mio::net::TcpListener::bind` so the
//! accept backlog can be deep (a storm of reconnects after a restart).

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Accept backlog requested (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 8192;

/// A non-blocking listener on `addr` with [`BACKLOG`]; with `reuse_port`,
/// `SO_REUSEPORT` lets other processes listen on the same port (the
/// kernel spreads connections among them).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
