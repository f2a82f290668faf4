//! The TCP front end (RFC 7766): length-prefixed messages, pipelining, an
//! idle timeout, a cap on open connections and bounded buffers.
//!
//! Each connection is one task that reads and writes at the same time: while
//! answers wait to be written it keeps reading queries, until the unsent
//! answers pass [`OUTPUT_HIGH_WATER`] (then it only writes, so a client that
//! does not read cannot make us buffer without bound). Answers are sent in
//! query order. Memory per connection is at most one maximum-size message of
//! input plus [`OUTPUT_HIGH_WATER`] and one maximum-size answer of output.
//!
//! A zone transfer request (AXFR, IXFR) is answered in turn like any query,
//! after the answers queued before it, but by [`super::transfer`]: its
//! messages are produced one at a time while the unsent output stays below
//! [`TRANSFER_HIGH_WATER`], so a transfer of any size holds a few messages.
//! No further query is read until the transfer is sent.

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::transfer::{self, ActiveTransfer, Start};
use super::{Responder, ServerStats, Shared};
use crate::dns::Transport;
use crate::xfr::outgoing;
use crate::xfr::tsig::unix_now;

/// Largest DNS message (and answer buffer), the limit of the 2-byte length.
const MAX_MESSAGE: usize = 65_535;
/// A length prefix below the size of a DNS header cannot frame a message.
const MIN_MESSAGE: usize = 12;
/// Reading stops while more unsent answer bytes than this are queued.
pub const OUTPUT_HIGH_WATER: usize = 16 * 1024;
/// A zone transfer's messages are produced while fewer unsent bytes than
/// this are queued: four of its largest messages.
pub const TRANSFER_HIGH_WATER: usize = 4 * outgoing::MAX_MESSAGE;
/// Input buffer reserved per read when no longer message is announced.
const READ_CHUNK: usize = 4096;
/// After the last answer of a connection we close, how long unread queries
/// are drained so that closing does not reset the connection under the answers.
const LINGER: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (say, out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

thread_local! {
    /// The worker's answer buffer: the core writes here, then the answer is
    /// copied behind its length into the connection's output.
    static ANSWER: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; MAX_MESSAGE].into_boxed_slice());
}

/// Accepts connections on `listener` until the worker stops.
pub(super) async fn accept<R: Responder>(listener: TcpListener, shared: Arc<Shared<R>>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("TCP accept failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(slot) = ConnectionSlot::take(&shared) else {
            let refused = shared.stats.tcp_refused.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged on the first refusal and then at every power of two, not per connection.
            if refused.is_power_of_two() {
                tracing::warn!(
                    %peer, refused, limit = shared.limits.max_connections,
                    "TCP connection limit reached, closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        ServerStats::bump(&shared.stats.tcp_accepted);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = serve_connection(stream, &shared).await {
                tracing::debug!(%peer, "TCP connection ended: {e}");
            }
        });
    }
}

/// One of the `tcp_max_connections` places; given back when dropped.
struct ConnectionSlot<R: Responder> {
    shared: Arc<Shared<R>>,
}

impl<R: Responder> ConnectionSlot<R> {
    /// Takes a place if one is free.
    fn take(shared: &Arc<Shared<R>>) -> Option<ConnectionSlot<R>> {
        let limit = shared.limits.max_connections;
        shared
            .tcp_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()?;
        Some(ConnectionSlot {
            shared: shared.clone(),
        })
    }
}

impl<R: Responder> Drop for ConnectionSlot<R> {
    fn drop(&mut self) {
        self.shared.tcp_open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection's reading side is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// Still reading.
    Open,
    /// The client closed its side.
    Eof,
    /// `tcp_max_queries_per_connection` reached: answer what was read, then close.
    QueryLimit,
    /// A length prefix that cannot frame a DNS message, or a message the core
    /// leaves unanswered (unreadable, or a response): stop trusting the stream
    /// and close it after the answers before it, as Knot does.
    Malformed,
}

/// Serves one connection until the client closes it, it idles out or a limit ends it.
async fn serve_connection<R: Responder>(
    mut stream: TcpStream,
    shared: &Shared<R>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?.ip();
    let mut transfer: Option<Box<ActiveTransfer>> = None;
    let result = serve_frames(&mut stream, peer, shared, &mut transfer).await;
    if let Some(active) = &transfer {
        match &result {
            Ok(()) => active.abandoned(&"the connection idled out"),
            Err(e) => active.abandoned(e),
        }
    }
    result
}

/// The body of [`serve_connection`]; `transfer` holds the zone transfer
/// being sent, if any, so that an unfinished one can be logged.
async fn serve_frames<R: Responder>(
    stream: &mut TcpStream,
    peer: IpAddr,
    shared: &Shared<R>,
    transfer: &mut Option<Box<ActiveTransfer>>,
) -> io::Result<()> {
    let timeout = shared.limits.idle_timeout;
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut output = Output::default();
    let mut answered: u32 = 0;
    let mut read_end = ReadEnd::Open;
    let idle = tokio::time::sleep(timeout);
    tokio::pin!(idle);

    loop {
        let mut progress = false;
        if let Some(active) = transfer
            && !fill_transfer(active, &mut output)?
        {
            active.finished(&shared.stats);
            *transfer = None;
        }
        if transfer.is_none() && (read_end == ReadEnd::Open || read_end == ReadEnd::Eof) {
            let budget = shared
                .limits
                .max_queries_per_connection
                .map(|max| max.saturating_sub(answered));
            let frames = answer_frames(
                &input,
                &mut output,
                budget,
                shared.responder.as_ref(),
                peer,
                shared.transfers.is_some(),
            );
            answered = answered.saturating_add(frames.answered);
            let request = frames
                .transfer
                .and_then(|range| input.get(range))
                .map(<[u8]>::to_vec);
            input.drain(..frames.consumed);
            if let Some(end) = frames.end {
                if end == ReadEnd::Malformed {
                    ServerStats::bump(&shared.stats.tcp_malformed);
                }
                read_end = end;
            }
            if let (Some(request), Some(policy)) = (request, &shared.transfers) {
                match transfer::start(policy, &request, peer, &shared.stats).await {
                    Start::Stream(active) => *transfer = Some(active),
                    Start::Answer(answer) => output.push_message(&answer),
                }
                // Produce the first messages (or answer what follows) now.
                continue;
            }
        }
        progress |= output.write_some(stream)?;
        if read_end != ReadEnd::Open && output.is_empty() && transfer.is_none() {
            break;
        }
        if progress {
            idle.as_mut().reset(Instant::now() + timeout);
        }

        // No query is read while a transfer is being sent: they wait in the
        // socket, in order.
        let want_read =
            read_end == ReadEnd::Open && transfer.is_none() && output.unsent() < OUTPUT_HIGH_WATER;
        // A transfer whose queued messages all went out produces more as
        // soon as the socket takes them (waiting here also lets the worker's
        // other connections run).
        let want_write = !output.is_empty() || transfer.is_some();
        tokio::select! {
            ready = stream.readable(), if want_read => {
                ready?;
                if read_some(stream, &mut input)? {
                    idle.as_mut().reset(Instant::now() + timeout);
                } else {
                    read_end = ReadEnd::Eof;
                }
            }
            ready = stream.writable(), if want_write => ready?,
            () = &mut idle => {
                ServerStats::bump(&shared.stats.tcp_timed_out);
                return Ok(());
            }
        }
    }

    if read_end == ReadEnd::QueryLimit || read_end == ReadEnd::Malformed {
        // Half-close, then drain what the client still sends: closing with
        // unread input would reset the connection and could lose the answers.
        stream.shutdown().await?;
        let _ = tokio::time::timeout(LINGER, drain(stream)).await;
    }
    Ok(())
}

/// Queues the transfer's next messages until [`TRANSFER_HIGH_WATER`] unsent
/// bytes are waiting. Returns `false` once its last message is queued.
fn fill_transfer(active: &mut ActiveTransfer, output: &mut Output) -> io::Result<bool> {
    while output.unsent() < TRANSFER_HIGH_WATER {
        match active.next_message(unix_now()) {
            Ok(Some(message)) => output.push_message(message),
            Ok(None) => return Ok(false),
            // Signing a message we built cannot fail; if it did, the client
            // must not get a stream with a hole: end the connection.
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    Ok(true)
}

/// Reads whatever is available into `input`. Returns `false` at end of stream.
fn read_some(stream: &TcpStream, input: &mut Vec<u8>) -> io::Result<bool> {
    // Room for the whole announced message when its length is known, else a chunk.
    let announced = match input.as_slice() {
        [high, low, ..] => 2 + usize::from(u16::from_be_bytes([*high, *low])),
        _ => 0,
    };
    let want = announced.saturating_sub(input.len()).max(READ_CHUNK);
    input.reserve_exact(want);
    match stream.try_read_buf(input) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads and discards until end of stream or error.
async fn drain(stream: &TcpStream) {
    let mut sink = [0u8; 1024];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// What [`answer_frames`] did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Frames {
    /// Input bytes used (whole frames).
    consumed: usize,
    /// Queries taken (answered or ignored).
    answered: u32,
    /// Set when the connection must stop reading.
    end: Option<ReadEnd>,
    /// Where in the input the zone transfer request that stopped answering
    /// lies (counted in `consumed` and `answered`); it is answered next.
    transfer: Option<std::ops::Range<usize>>,
}

/// Answers the complete frames at the start of `input`, appending each answer
/// with its length to `output`, until the input holds no complete frame, the
/// output reaches its high-water mark or `budget` queries were taken. With
/// `transfers`, a zone transfer request stops it too: it is taken and left
/// for the caller in [`Frames::transfer`].
fn answer_frames<R: Responder + ?Sized>(
    input: &[u8],
    output: &mut Output,
    budget: Option<u32>,
    responder: &R,
    peer: IpAddr,
    transfers: bool,
) -> Frames {
    let mut frames = Frames::default();
    while output.unsent() < OUTPUT_HIGH_WATER {
        if budget.is_some_and(|budget| frames.answered >= budget) {
            frames.end = Some(ReadEnd::QueryLimit);
            break;
        }
        let rest = input.get(frames.consumed..).unwrap_or(&[]);
        let [high, low, after @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        if len < MIN_MESSAGE {
            frames.end = Some(ReadEnd::Malformed);
            break;
        }
        let Some(query) = after.get(..len) else { break };
        let start = frames.consumed + 2;
        frames.consumed += 2 + len;
        frames.answered += 1;
        if transfers && transfer::is_transfer_request(query) {
            frames.transfer = Some(start..start + len);
            break;
        }
        let answered = ANSWER.with_borrow_mut(|answer| {
            let reply = responder
                .respond_from(query, Transport::Tcp, peer, answer)
                .and_then(|n| answer.get(..n));
            match reply {
                Some(reply) => {
                    output.push_message(reply);
                    true
                }
                None => false,
            }
        });
        if !answered {
            frames.end = Some(ReadEnd::Malformed);
            break;
        }
    }
    frames
}

/// Answers waiting to be written, each behind its 2-byte length.
#[derive(Debug, Default)]
struct Output {
    bytes: Vec<u8>,
    /// How much of `bytes` is already written.
    written: usize,
}

impl Output {
    /// Whether everything is written.
    fn is_empty(&self) -> bool {
        self.written == self.bytes.len()
    }

    /// Bytes not yet written.
    fn unsent(&self) -> usize {
        self.bytes.len() - self.written
    }

    /// Queues `message` with its length prefix; a longer message cannot be
    /// framed and is dropped (the core never writes one).
    fn push_message(&mut self, message: &[u8]) {
        let Ok(len) = u16::try_from(message.len()) else {
            return;
        };
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(message);
    }

    /// Writes as much as the socket takes without waiting; returns whether anything was written.
    fn write_some(&mut self, stream: &TcpStream) -> io::Result<bool> {
        let mut progress = false;
        while let Some(pending) = self
            .bytes
            .get(self.written..)
            .filter(|rest| !rest.is_empty())
        {
            match stream.try_write(pending) {
                Ok(n) => {
                    self.written += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.is_empty() {
            self.bytes.clear();
            self.written = 0;
        } else if self.written >= OUTPUT_HIGH_WATER {
            self.bytes.drain(..self.written);
            self.written = 0;
        }
        Ok(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client address the tests pretend to be.
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// Echoes the query with the QR bit set; ignores queries whose first byte is 0xff.
    struct Echo;

    impl Responder for Echo {
        fn respond(&self, query: &[u8], _: Transport, out: &mut [u8]) -> Option<usize> {
            if query.first() == Some(&0xff) {
                return None;
            }
            let out = out.get_mut(..query.len())?;
            out.copy_from_slice(query);
            out[2] |= 0x80;
            Some(query.len())
        }
    }

    fn frame(id: u8, len: usize) -> Vec<u8> {
        let mut frame = (len as u16).to_be_bytes().to_vec();
        frame.push(id);
        frame.resize(2 + len, 0);
        frame
    }

    #[test]
    fn pipelined_frames_are_answered_in_order_and_partial_ones_wait() {
        let mut input = [frame(1, 12), frame(2, 20), frame(3, 12)].concat();
        input.truncate(input.len() - 1);
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, false);
        assert_eq!(
            frames,
            Frames {
                consumed: 14 + 22,
                answered: 2,
                end: None,
                transfer: None
            }
        );
        let mut expected = [frame(1, 12), frame(2, 20)].concat();
        expected[4] |= 0x80;
        expected[14 + 4] |= 0x80;
        assert_eq!(output.bytes, expected);
    }

    #[test]
    fn unanswered_message_ends_reading_after_earlier_answers() {
        let input = [frame(1, 12), frame(0xff, 12), frame(3, 12)].concat();
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, false);
        assert_eq!(
            frames,
            Frames {
                consumed: 28,
                answered: 2,
                end: Some(ReadEnd::Malformed),
                transfer: None
            }
        );
        assert_eq!(output.unsent(), 14);
    }

    #[test]
    fn short_length_prefix_is_malformed() {
        let input = [frame(1, 12), vec![0, 3, 1, 2, 3]].concat();
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, false);
        assert_eq!(
            frames,
            Frames {
                consumed: 14,
                answered: 1,
                end: Some(ReadEnd::Malformed),
                transfer: None
            }
        );
    }

    #[test]
    fn query_budget_stops_taking_frames() {
        let input = [frame(1, 12), frame(2, 12), frame(3, 12)].concat();
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, Some(2), &Echo, LOCAL, false);
        assert_eq!(
            frames,
            Frames {
                consumed: 28,
                answered: 2,
                end: Some(ReadEnd::QueryLimit),
                transfer: None
            }
        );
    }

    #[test]
    fn transfer_request_stops_answering_and_is_handed_over() {
        let mut axfr = b"\x00\x07\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        axfr.extend_from_slice(b"\x07example\x04test\x00\x00\xfc\x00\x01");
        let mut axfr_frame = (axfr.len() as u16).to_be_bytes().to_vec();
        axfr_frame.extend_from_slice(&axfr);
        let input = [frame(1, 12), axfr_frame.clone(), frame(3, 12)].concat();
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, true);
        assert_eq!(
            frames,
            Frames {
                consumed: 14 + axfr_frame.len(),
                answered: 2,
                end: None,
                transfer: Some(16..16 + axfr.len()),
            }
        );
        assert_eq!(output.unsent(), 14, "only the answer before it");
        // Without transfers the responder answers it like any query.
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, false);
        assert_eq!((frames.answered, frames.transfer), (3, None));
    }

    #[test]
    fn output_high_water_stops_answering() {
        let input: Vec<u8> = (0..10).flat_map(|i| frame(i, 4000)).collect();
        let mut output = Output::default();
        let frames = answer_frames(&input, &mut output, None, &Echo, LOCAL, false);
        assert_eq!(
            frames.answered, 5,
            "stops once past {OUTPUT_HIGH_WATER} unsent bytes"
        );
        assert!(output.unsent() < OUTPUT_HIGH_WATER + 4002);
    }
}
