//! The UDP front end: one task per socket, draining it without waiting.
//!
//! The loop reads with `try_recv_from` until the socket is empty and only then
//! awaits readiness, so under load a query costs one `recvfrom`, one
//! `sendto` and the core's work: no epoll round trip, no allocation, no lock.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{Responder, ServerStats, Shared};
use crate::dns::Transport;

/// Queries answered in a row before the task yields to the worker's other
/// tasks (TCP, shutdown); large enough to keep the yield cost invisible.
const BATCH: usize = 64;
/// Pause after an unexpected receive error, so a persistent one cannot spin.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Serves `socket` until the worker stops. The receive buffer holds any UDP
/// datagram; the response buffer is the 64 KiB the core may use.
pub(super) async fn serve<R: Responder>(socket: UdpSocket, shared: Arc<Shared<R>>) {
    let mut query = vec![0u8; 65_535].into_boxed_slice();
    let mut response = vec![0u8; 65_535].into_boxed_slice();
    let mut answered_in_a_row = 0;
    loop {
        let (len, peer) = match socket.try_recv_from(&mut query) {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                answered_in_a_row = 0;
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
        let answer = query
            .get(..len)
            .and_then(|query| {
                shared
                    .responder
                    .respond(query, Transport::Udp, &mut response)
            })
            .and_then(|n| response.get(..n));
        if let Some(answer) = answer {
            send(&socket, answer, peer, &shared.stats).await;
        }
        answered_in_a_row += 1;
        if answered_in_a_row == BATCH {
            answered_in_a_row = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// Sends one response; waits for buffer space only when the socket is full.
async fn send(socket: &UdpSocket, answer: &[u8], peer: std::net::SocketAddr, stats: &ServerStats) {
    let result = match socket.try_send_to(answer, peer) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(answer, peer).await,
        other => other,
    };
    if let Err(e) = result {
        ServerStats::bump(&stats.udp_send_errors);
        tracing::debug!(%peer, "UDP send error: {e}");
    }
}
