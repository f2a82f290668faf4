//! The UDP front end: one task per socket, answering in batches.
//!
//! Under load one `recvmmsg` brings up to [`RECEIVE_BATCH`] queries, the core
//! answers each into its own slot, and one `sendmmsg` sends the answers: two
//! system calls per batch instead of two per query, and the client is woken
//! once per batch. Buffers are allocated once per socket; nothing per query.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{Responder, ServerStats, Shared};
use crate::dns::Transport;

/// Queries answered in a row before the task yields to the worker's other
/// tasks (TCP, shutdown); large enough to keep the yield cost invisible.
const YIELD_EVERY: usize = 64;
/// Pause after an unexpected receive error, so a persistent one cannot spin.
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Datagrams taken from the socket per `recvmmsg` call.
const RECEIVE_BATCH: usize = 32;
/// Receive buffer per datagram: queries are small; a longer datagram is cut
/// (MSG_TRUNC) and answered as what it is, a malformed query.
const QUERY_BUFFER: usize = 4096;
/// Answer buffer per datagram: UDP answers never exceed `udp_payload`, which
/// the configuration caps at 4096.
const ANSWER_BUFFER: usize = 4096;

/// Serves `socket` until the worker stops.
pub(super) async fn serve<R: Responder>(socket: UdpSocket, shared: Arc<Shared<R>>) {
    let mut queries = vec![0u8; QUERY_BUFFER * RECEIVE_BATCH].into_boxed_slice();
    let mut answers = vec![0u8; ANSWER_BUFFER * RECEIVE_BATCH].into_boxed_slice();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECEIVE_BATCH, None);
    let mut received = [(0usize, None::<SocketAddr>); RECEIVE_BATCH];
    let mut outgoing: Vec<(usize, usize, SockAddr)> = Vec::with_capacity(RECEIVE_BATCH);
    let mut since_yield = 0;
    loop {
        let count = match receive_batch(&socket, &mut headers, &mut queries, &mut received) {
            Ok(count) => count,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                since_yield = 0;
                if let Err(e) = socket.readable().await {
                    tracing::error!("UDP socket failed, no longer served: {e}");
                    return;
                }
                continue;
            }
            Err(e) => {
                ServerStats::bump(&shared.stats.udp_receive_errors);
                tracing::debug!("UDP receive error: {e}");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        outgoing.clear();
        for (slot, &(len, peer)) in received[..count].iter().enumerate() {
            let Some(peer) = peer else { continue };
            let query = &queries[slot * QUERY_BUFFER..slot * QUERY_BUFFER + len];
            let out = &mut answers[slot * ANSWER_BUFFER..(slot + 1) * ANSWER_BUFFER];
            if let Some(n) = shared
                .responder
                .respond_from(query, Transport::Udp, peer.ip(), out)
                && n <= ANSWER_BUFFER
            {
                outgoing.push((slot * ANSWER_BUFFER, n, SockAddr::from(peer)));
            }
        }
        send_all(&socket, &answers, &outgoing, &shared.stats).await;
        since_yield += count;
        if since_yield >= YIELD_EVERY {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// One `recvmmsg` without waiting; fills `received` with each datagram's
/// length and sender and returns how many arrived. `WouldBlock` clears the
/// socket's readiness so the caller can wait for the next datagram.
fn receive_batch(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    buffers: &mut [u8],
    received: &mut [(usize, Option<SocketAddr>); RECEIVE_BATCH],
) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    socket.try_io(Interest::READABLE, || {
        let mut chunks = buffers.chunks_exact_mut(QUERY_BUFFER);
        let mut slices: [[IoSliceMut<'_>; 1]; RECEIVE_BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results = recvmmsg(fd, headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
            .map_err(io::Error::from)?;
        let mut count = 0;
        for message in results {
            received[count] = (
                message.bytes.min(QUERY_BUFFER),
                message.address.and_then(to_std),
            );
            count += 1;
        }
        Ok(count)
    })
}

/// The standard-library form of a sender's address.
fn to_std(address: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// Sends every answer of a batch: one `sendmmsg` for as many as the socket
/// takes, then one by one (waiting for room) for any left over.
async fn send_all(
    socket: &UdpSocket,
    buffer: &[u8],
    outgoing: &[(usize, usize, SockAddr)],
    stats: &ServerStats,
) {
    if outgoing.is_empty() {
        return;
    }
    let fd = socket.as_raw_fd();
    let sent = socket
        .try_io(Interest::WRITABLE, || send_batch(fd, buffer, outgoing))
        .unwrap_or(0);
    for (offset, len, peer) in &outgoing[sent..] {
        let Some(peer) = peer.as_socket() else {
            continue;
        };
        send(socket, &buffer[*offset..*offset + *len], peer, stats).await;
    }
}

/// `sendmmsg(2)` over the answers in `buffer`; returns how many were sent.
#[allow(unsafe_code)]
fn send_batch(
    fd: RawFd,
    buffer: &[u8],
    outgoing: &[(usize, usize, SockAddr)],
) -> io::Result<usize> {
    let count = outgoing.len().min(RECEIVE_BATCH);
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; RECEIVE_BATCH];
    for (iovec, &(offset, len, _)) in iovecs.iter_mut().zip(outgoing) {
        let data = &buffer[offset..offset + len];
        iovec.iov_base = data.as_ptr() as *mut libc::c_void;
        iovec.iov_len = data.len();
    }
    // All iovec pointers derive from one base pointer, taken once.
    let iovec_base = iovecs.as_mut_ptr();
    let mut messages: [libc::mmsghdr; RECEIVE_BATCH] = std::array::from_fn(|i| {
        let (name, name_len) = match outgoing.get(i) {
            Some((_, _, peer)) => (peer.as_ptr() as *mut libc::c_void, peer.len()),
            None => (std::ptr::null_mut(), 0),
        };
        libc::mmsghdr {
            msg_hdr: libc::msghdr {
                msg_name: name,
                msg_namelen: name_len,
                msg_iov: iovec_base.wrapping_add(i),
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            },
            msg_len: 0,
        }
    });
    // SAFETY: the first `count` headers each point at one iovec of `iovecs`
    // (which points into `buffer`, in bounds by construction above) and at a
    // socket address owned by `outgoing`; all of them outlive the call and
    // the kernel only reads them (it writes `msg_len`, inside `messages`).
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            messages.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Sends one response; waits for buffer space only when the socket is full.
async fn send(socket: &UdpSocket, answer: &[u8], peer: SocketAddr, stats: &ServerStats) {
    let result = match socket.try_send_to(answer, peer) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(answer, peer).await,
        other => other,
    };
    if let Err(e) = result {
        ServerStats::bump(&stats.udp_send_errors);
        tracing::debug!(%peer, "UDP send error: {e}");
    }
}
