//! `server.send_timeout_ms`: the longest the server's sent data may wait for the client
//! to take it. actix has no write timeout, and a client that stops reading stops
//! actix from polling its response: a WebSocket session behind a full socket runs none
//! of its timers, so nothing in the process can end it. The kernel can, with
//! `TCP_USER_TIMEOUT`, which also counts the time a client keeps its receive window
//! shut (Linux 5.11 and later).

use std::any::Any;
use std::os::fd::AsRawFd;
use std::time::Duration;

use actix_web::rt::net::TcpStream;

/// Sets the send timeout on a connection actix just accepted (`HttpServer::on_connect`);
/// a zero `timeout` leaves the kernel's default.
pub fn limit_unacknowledged_sends(connection: &dyn Any, timeout: Duration) {
    let Some(stream) = connection.downcast_ref::<TcpStream>() else { return };
    if timeout.is_zero() {
        return;
    }
    // The configuration keeps it within a C int of milliseconds, as the kernel requires.
    let millis = libc::c_uint::try_from(timeout.as_millis()).unwrap_or(i32::MAX as libc::c_uint);
    // SAFETY: a valid socket descriptor, and an option value of the size passed.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            std::ptr::from_ref(&millis).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if set != 0 {
        log::warn!("could not set TCP_USER_TIMEOUT on a connection: {}", std::io::Error::last_os_error());
    }
}
