//! The daemon's [`Upstream`]: real masters reached with the transfer client,
//! and NOTIFY sent to downstream servers over UDP (RFC 1996 §3.6: retried a
//! few times until answered).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::Transfer;
use super::client::{self, Master, TransferLimits};
use super::secondary::Upstream;
use crate::zone::rr::{class, rtype};
use crate::zone::{Name, Zone};

/// How long to wait for a master's SOA answer.
const SOA_TIMEOUT: Duration = Duration::from_secs(3);
/// NOTIFY attempts per downstream server, and the wait for each answer.
const NOTIFY_ATTEMPTS: u32 = 3;
const NOTIFY_WAIT: Duration = Duration::from_secs(2);

/// The masters and downstream servers of one secondary zone.
#[derive(Debug, Clone)]
pub struct Masters {
    zone: Name,
    masters: Vec<Master>,
    limits: TransferLimits,
    downstream: Arc<Vec<SocketAddr>>,
}

impl Masters {
    /// Masters of `zone`, tried in this order, and the servers to NOTIFY.
    pub fn new(
        zone: Name,
        masters: Vec<Master>,
        limits: TransferLimits,
        downstream: Vec<SocketAddr>,
    ) -> Masters {
        Masters {
            zone,
            masters,
            limits,
            downstream: Arc::new(downstream),
        }
    }
}

impl Upstream for Masters {
    fn masters(&self) -> usize {
        self.masters.len()
    }

    fn describe(&self, master: usize) -> String {
        self.masters
            .get(master)
            .map_or_else(String::new, |m| m.address.to_string())
    }

    async fn serial(&self, master: usize) -> Result<u32, String> {
        let master = self.masters.get(master).ok_or("no such master")?;
        client::query_soa(master, &self.zone, SOA_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
    }

    async fn transfer(
        &self,
        master: usize,
        current: Option<Arc<Zone>>,
        allow_older: bool,
    ) -> Result<Transfer, String> {
        let master = self.masters.get(master).ok_or("no such master")?;
        let mut limits = self.limits.clone();
        limits.allow_older = allow_older;
        let (transfer, report) = client::fetch(master, &self.zone, current.as_deref(), &limits)
            .await
            .map_err(|e| e.to_string())?;
        if report.dropped_out_of_zone > 0 {
            tracing::warn!(
                zone = %self.zone,
                master = %report.master,
                dropped = report.dropped_out_of_zone,
                "transfer carried records outside the zone; they were dropped"
            );
        }
        tracing::info!(
            zone = %self.zone,
            master = %report.master,
            kind = ?report.kind,
            fell_back_to_axfr = report.fell_back_to_axfr,
            messages = report.messages,
            records = report.records,
            bytes = report.bytes,
            "transfer received"
        );
        Ok(transfer)
    }

    async fn notify_downstream(&self, serial: u32) {
        for &target in self.downstream.iter() {
            let zone = self.zone.clone();
            tokio::spawn(async move {
                if let Err(e) = send_notify(&zone, serial, target).await {
                    tracing::warn!(%zone, %target, "NOTIFY not acknowledged: {e}");
                }
            });
        }
    }
}

/// Sends one NOTIFY and waits for its answer, retrying a few times.
pub async fn send_notify(zone: &Name, serial: u32, target: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(target).await?;
    let id = (serial as u16) ^ (std::process::id() as u16);
    let message = notify_message(id, zone);
    let mut answer = [0u8; 512];
    for _ in 0..NOTIFY_ATTEMPTS {
        socket.send(&message).await?;
        match tokio::time::timeout(NOTIFY_WAIT, socket.recv(&mut answer)).await {
            Ok(Ok(len)) if len >= 12 && answer[..2] == id.to_be_bytes() => {
                tracing::debug!(%zone, %target, serial, "NOTIFY acknowledged");
                return Ok(());
            }
            Ok(Ok(_)) | Err(_) => continue,
            Ok(Err(e)) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no answer after 3 attempts",
    ))
}

/// A NOTIFY for `zone` (opcode 4, AA, question `zone SOA IN`).
fn notify_message(id: u16, zone: &Name) -> Vec<u8> {
    let mut message = Vec::with_capacity(12 + zone.as_wire().len() + 4);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&0x2400u16.to_be_bytes());
    message.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    message.extend_from_slice(zone.as_wire());
    message.extend_from_slice(&rtype::SOA.to_be_bytes());
    message.extend_from_slice(&class::IN.to_be_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_message_is_opcode_4_with_aa_and_the_soa_question() {
        let zone = Name::parse("example.test.").unwrap();
        let m = notify_message(7, &zone);
        assert_eq!(&m[..4], &[0, 7, 0x24, 0x00]);
        assert_eq!(&m[4..6], &[0, 1]);
        assert_eq!(&m[12..12 + 14], zone.as_wire());
        assert_eq!(&m[m.len() - 4..], &[0, 6, 0, 1]);
    }

    #[test]
    fn notify_reaches_a_listener_and_its_answer_is_taken() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let target = listener.local_addr().unwrap();
            let zone = Name::parse("example.test.").unwrap();
            let answer = tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let (len, from) = listener.recv_from(&mut buf).await.unwrap();
                buf[2] |= 0x80;
                listener.send_to(&buf[..len], from).await.unwrap();
                buf[2] >> 3 & 0xf
            });
            send_notify(&zone, 5, target).await.unwrap();
            assert_eq!(answer.await.unwrap(), 4, "opcode 4 was sent");
        });
    }
}
