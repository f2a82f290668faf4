//! TSIG (RFC 8945): signing our requests and verifying every message of the
//! answer, including multi-message zone transfers.
//!
//! In a multi-message answer each signed message's MAC chains the previous
//! one, and a master may leave up to 99 messages in a row unsigned (§5.3.1):
//! their bytes are then covered by the MAC of the next signed message. The
//! first and the last message must be signed.
//!
//! The MAC is computed here with aws-lc-rs' HMAC, the crypto library rustls
//! and hickory-proto (`dnssec-aws-lc-rs`) use too. hickory-proto's TSIG helper
//! verifies one message at a time and cannot cover unsigned intermediate
//! messages; it also re-parses every record, which would double the cost of a
//! large AXFR. This module only walks the message to its last record.
//!
//! Everything here is sans-IO: the clock is a parameter (`now`, seconds since
//! the Unix epoch), so skewed clocks are tested without touching the system's.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{constant_time, hmac};

use super::client::read_name;
use crate::config::{TsigAlgorithmName, TsigKeyConfig};
use crate::dns::query::{rcode, skip_name};
use crate::zone::Name;
use crate::zone::rr::{class, rtype};

/// The time window we allow between a signature and our clock (RFC 8945
/// §10 recommends 300 s).
pub const DEFAULT_FUDGE: u16 = 300;

/// Most unsigned messages allowed in a row between signed ones (RFC 8945
/// §5.3.1).
pub const MAX_UNSIGNED_RUN: usize = 99;

/// TSIG error codes carried in the TSIG record (RFC 8945 §3).
pub mod error_code {
    /// The MAC did not verify.
    pub const BADSIG: u16 = 16;
    /// The key is not known.
    pub const BADKEY: u16 = 17;
    /// The signature time is outside the fudge window.
    pub const BADTIME: u16 = 18;
    /// The MAC was truncated more than allowed.
    pub const BADTRUNC: u16 = 22;
}

/// A TSIG MAC algorithm. Only the HMAC-SHA2 family: hmac-md5 and hmac-sha1
/// are deprecated (RFC 8945 §6) and not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm with this name (`hmac-sha256`, with or without the
    /// trailing dot, any case); `None` for anything else.
    pub fn from_name(text: &str) -> Option<TsigAlgorithm> {
        let text = text.strip_suffix('.').unwrap_or(text);
        [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512]
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(text))
    }

    /// The algorithm named by a wire-form name (any case).
    pub fn from_wire_name(wire: &[u8]) -> Option<TsigAlgorithm> {
        [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512]
            .into_iter()
            .find(|algorithm| algorithm.wire_name().eq_ignore_ascii_case(wire))
    }

    /// The name used in configuration and in logs, without the trailing dot.
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm name in canonical wire form, as carried in TSIG records.
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            TsigAlgorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            TsigAlgorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            TsigAlgorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// Length of a full (untruncated) MAC in bytes.
    pub fn mac_len(self) -> usize {
        self.hmac().digest_algorithm().output_len()
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
            TsigAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
            TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shared TSIG key: its name, algorithm and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name; both sides must use the same one. Compared ignoring case.
    pub name: Name,
    /// MAC algorithm.
    pub algorithm: TsigAlgorithm,
    /// The shared secret (decoded, not base64).
    pub secret: Vec<u8>,
}

impl TsigKey {
    /// A key; the name is kept in lowercase (canonical) form, which is what
    /// the MAC covers (RFC 8945 §4.3.3).
    pub fn new(name: &Name, algorithm: TsigAlgorithm, secret: Vec<u8>) -> TsigKey {
        TsigKey {
            name: name.to_lowercase(),
            algorithm,
            secret,
        }
    }

    fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(self.algorithm.hmac(), &self.secret)
    }

    /// This key with its name in canonical form: the fields are public, so
    /// a key may have been built without [`TsigKey::new`].
    fn canonical(&self) -> TsigKey {
        TsigKey::new(&self.name, self.algorithm, self.secret.clone())
    }
}

impl From<&TsigKeyConfig> for TsigKey {
    /// The key a `[[tsig]]` section defines.
    fn from(config: &TsigKeyConfig) -> TsigKey {
        let algorithm = match config.algorithm {
            TsigAlgorithmName::HmacSha256 => TsigAlgorithm::HmacSha256,
            TsigAlgorithmName::HmacSha384 => TsigAlgorithm::HmacSha384,
            TsigAlgorithmName::HmacSha512 => TsigAlgorithm::HmacSha512,
        };
        TsigKey::new(&config.name, algorithm, config.secret.clone())
    }
}

impl fmt::Debug for TsigKey {
    // The secret stays out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a message failed TSIG processing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsigError {
    /// A message that must be signed (the first one) carries no TSIG record.
    #[error("the answer is not signed")]
    Unsigned,
    /// The stream ended on an unsigned message (RFC 8945 §5.3.1).
    #[error("the last message of the answer is not signed")]
    UnsignedEnd,
    /// More than [`MAX_UNSIGNED_RUN`] unsigned messages in a row.
    #[error("more than {MAX_UNSIGNED_RUN} unsigned messages in a row")]
    TooManyUnsigned,
    /// Signed with another key name than ours.
    #[error("signed with key {found}, expected {expected}")]
    WrongKeyName {
        /// Our key's name.
        expected: Name,
        /// The name in the message.
        found: String,
    },
    /// A request signed with a key we do not have (BADKEY).
    #[error("signed with key {found}, which is not configured here (BADKEY)")]
    UnknownKey {
        /// The key name in the message.
        found: String,
    },
    /// Signed with another algorithm than our key's.
    #[error("signed with algorithm {found}, expected {expected}")]
    WrongAlgorithm {
        /// Our key's algorithm.
        expected: TsigAlgorithm,
        /// The algorithm name in the message.
        found: String,
    },
    /// The MAC does not verify: wrong secret or altered message (BADSIG).
    #[error("the MAC does not verify (BADSIG)")]
    BadSig,
    /// The MAC is shorter than the algorithm's full output; we accept no
    /// truncated MACs.
    #[error("truncated MAC of {len} bytes (BADTRUNC)")]
    TruncatedMac {
        /// Length received.
        len: usize,
    },
    /// Signed outside the fudge window around our clock (BADTIME).
    #[error("signed at {signed} but our clock says {now}: more than {fudge} s apart (BADTIME)")]
    BadTime {
        /// Time Signed in the message (seconds since the epoch).
        signed: u64,
        /// Our clock.
        now: u64,
        /// The window allowed.
        fudge: u16,
    },
    /// The peer could not verify our signature (TSIG error BADSIG).
    #[error("the master rejected our signature (BADSIG): wrong secret?")]
    PeerBadSig,
    /// The peer does not know our key (TSIG error BADKEY).
    #[error("the master does not know key {key} (BADKEY)")]
    PeerBadKey {
        /// The key we signed with.
        key: Name,
    },
    /// The peer found our time outside its fudge window (TSIG error BADTIME).
    #[error("the master says our clock is off (BADTIME; its clock says {peer_time})")]
    PeerBadTime {
        /// The peer's clock when it answered (seconds since the epoch).
        peer_time: u64,
    },
    /// Another TSIG error from the peer (BADTRUNC or unknown).
    #[error("the master reported TSIG error {0}")]
    PeerError(u16),
    /// The TSIG record or the message around it cannot be read.
    #[error("malformed TSIG record: {0}")]
    Malformed(&'static str),
}

impl TsigError {
    /// The TSIG error code (RFC 8945 §3) a server answers a request that
    /// failed verification with: BADKEY for an unknown key or algorithm,
    /// BADSIG for a MAC that does not verify (a truncated MAC included: we
    /// accept none), BADTIME outside the time window. `None` for errors that
    /// are not about the request's signature (a malformed record: FORMERR).
    pub fn request_error_code(&self) -> Option<u16> {
        match self {
            TsigError::UnknownKey { .. }
            | TsigError::WrongKeyName { .. }
            | TsigError::WrongAlgorithm { .. } => Some(error_code::BADKEY),
            TsigError::BadSig | TsigError::TruncatedMac { .. } => Some(error_code::BADSIG),
            TsigError::BadTime { .. } => Some(error_code::BADTIME),
            _ => None,
        }
    }
}

/// Seconds since the Unix epoch by the system clock (0 if it is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Signs a request: appends a TSIG record to `message` (a complete DNS
/// message without TSIG) and counts it in ARCOUNT. Returns the request MAC,
/// which the first message of the answer chains (RFC 8945 §5.1).
pub fn sign_request(key: &TsigKey, message: &mut Vec<u8>, now: u64) -> Result<Vec<u8>, TsigError> {
    let key = key.canonical();
    let context = hmac::Context::with_key(&key.hmac_key());
    sign_message(&key, context, message, &Fields::at(now), Variables::Full)
}

/// The key a request was signed with and the request's MAC, which the
/// first message of the answer chains.
pub type VerifiedRequest = (Arc<TsigKey>, Vec<u8>);

/// Verifies a request as a server: finds its TSIG record, looks the key up
/// by name among `keys` (ignoring case; the algorithm must match), checks
/// the MAC, then the time against `now` within the request's Fudge (RFC 8945
/// §5.2). Returns `None` for an unsigned request, else the key and the
/// request MAC, which the answer's first MAC chains ([`ResponseSigner`]).
///
/// Errors map to the TSIG error the answer carries through
/// [`TsigError::request_error_code`]; [`tsig_error_answer`] builds it.
pub fn verify_request(
    keys: &[Arc<TsigKey>],
    message: &[u8],
    now: u64,
) -> Result<Option<VerifiedRequest>, TsigError> {
    let Some(tsig) = find_tsig(message)? else {
        return Ok(None);
    };
    let key = request_key(keys, &tsig)?;
    if tsig.mac.len() != key.algorithm.mac_len() {
        return Err(TsigError::TruncatedMac {
            len: tsig.mac.len(),
        });
    }
    let canonical = key.canonical();
    let mut context = hmac::Context::with_key(&canonical.hmac_key());
    digest_signed_message(&mut context, message, &tsig)?;
    digest_variables(&mut context, &canonical, &tsig);
    let expected = context.sign();
    constant_time::verify_slices_are_equal(expected.as_ref(), tsig.mac)
        .map_err(|_| TsigError::BadSig)?;
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        return Err(TsigError::BadTime {
            signed: tsig.time,
            now,
            fudge: tsig.fudge,
        });
    }
    Ok(Some((key.clone(), tsig.mac.to_vec())))
}

/// Turns `response`, a complete answer to `request` without TSIG, into the
/// answer to a request that failed [`verify_request`] with `error` (RFC 8945
/// §5.2, §5.3.2): RCODE NOTAUTH and a TSIG record carrying the TSIG error.
/// For BADKEY and BADSIG the record is unsigned (empty MAC); for BADTIME it
/// is signed with the request's key, chaining the request MAC, with the
/// request's Time Signed and our clock `now` in Other Data, so that the
/// client can verify it and see how far apart the clocks are. An error
/// without a TSIG code (a malformed record) gets FORMERR and no record.
pub fn tsig_error_answer(
    keys: &[Arc<TsigKey>],
    request: &[u8],
    error: &TsigError,
    response: &mut Vec<u8>,
    now: u64,
) -> Result<(), TsigError> {
    let Some(code) = error.request_error_code() else {
        set_rcode(response, rcode::FORMERR)?;
        return Ok(());
    };
    set_rcode(response, rcode::NOTAUTH)?;
    let tsig = find_tsig(request)?.ok_or(TsigError::Unsigned)?;
    if code == error_code::BADTIME
        && let Ok(key) = request_key(keys, &tsig)
    {
        let key = key.canonical();
        let context = start_chain(&key.hmac_key(), tsig.mac);
        let fields = Fields {
            time: tsig.time,
            error: code,
            other: &(now & 0xffff_ffff_ffff).to_be_bytes()[2..],
        };
        sign_message(&key, context, response, &fields, Variables::Full)?;
        return Ok(());
    }
    let fields = Fields {
        time: now,
        error: code,
        other: &[],
    };
    append_tsig_record(response, &tsig.key_name, &tsig.algorithm, &fields, &[])
}

/// Verifies the messages of an answer to a signed request, in order, and
/// remembers what the next one chains.
pub struct ResponseVerifier {
    key: TsigKey,
    hmac_key: hmac::Key,
    fudge: u16,
    /// MAC of the request, then of the last signed message.
    prior_mac: Vec<u8>,
    /// Digest of the prior MAC and the unsigned messages since it.
    pending: Option<hmac::Context>,
    signed: usize,
    unsigned_run: usize,
}

impl fmt::Debug for ResponseVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseVerifier")
            .field("key", &self.key)
            .field("signed", &self.signed)
            .field("unsigned_run", &self.unsigned_run)
            .finish_non_exhaustive()
    }
}

/// Whether a verified message carried its own signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Signed, and the MAC (chained over any unsigned messages before it)
    /// verified.
    Signed,
    /// Unsigned intermediate message: a later signed message covers it.
    Unsigned,
}

impl ResponseVerifier {
    /// A verifier for the answer to a request signed with `key`, whose MAC
    /// was `request_mac`.
    pub fn new(key: &TsigKey, request_mac: Vec<u8>) -> ResponseVerifier {
        ResponseVerifier {
            key: key.canonical(),
            hmac_key: key.hmac_key(),
            fudge: DEFAULT_FUDGE,
            prior_mac: request_mac,
            pending: None,
            signed: 0,
            unsigned_run: 0,
        }
    }

    /// Verifies the next message of the answer against our clock `now`.
    /// Data of an unsigned message is trusted only once a later signed
    /// message verifies and [`ResponseVerifier::finish`] succeeds.
    pub fn verify(&mut self, message: &[u8], now: u64) -> Result<Verified, TsigError> {
        let Some(tsig) = find_tsig(message)? else {
            return self.unsigned(message);
        };
        if !tsig.key_name.eq_ignore_ascii_case(self.key.name.as_wire()) {
            return Err(TsigError::WrongKeyName {
                expected: self.key.name.clone(),
                found: crate::zone::name::display_wire(&tsig.key_name),
            });
        }
        if TsigAlgorithm::from_wire_name(&tsig.algorithm) != Some(self.key.algorithm) {
            return Err(TsigError::WrongAlgorithm {
                expected: self.key.algorithm,
                found: crate::zone::name::display_wire(&tsig.algorithm),
            });
        }
        // Error answers to BADSIG and BADKEY are unsigned (§5.3.2): report
        // the error itself, there is nothing to verify.
        if tsig.mac.is_empty() && tsig.error != 0 {
            return Err(self.peer_error(&tsig));
        }
        if tsig.mac.len() != self.key.algorithm.mac_len() {
            return Err(TsigError::TruncatedMac {
                len: tsig.mac.len(),
            });
        }
        let mut context = self.take_pending();
        digest_signed_message(&mut context, message, &tsig)?;
        if self.signed == 0 {
            digest_variables(&mut context, &self.key, &tsig);
        } else {
            digest_timers(&mut context, tsig.time, tsig.fudge);
        }
        let expected = context.sign();
        constant_time::verify_slices_are_equal(expected.as_ref(), tsig.mac)
            .map_err(|_| TsigError::BadSig)?;
        if tsig.error != 0 {
            return Err(self.peer_error(&tsig));
        }
        // The time is checked after the MAC (§5.2.3), against our window.
        if now.abs_diff(tsig.time) > u64::from(self.fudge) {
            return Err(TsigError::BadTime {
                signed: tsig.time,
                now,
                fudge: self.fudge,
            });
        }
        self.prior_mac.clear();
        self.prior_mac.extend_from_slice(tsig.mac);
        self.signed += 1;
        self.unsigned_run = 0;
        Ok(Verified::Signed)
    }

    /// Checks the answer ended on a signed message. Call after the last one.
    pub fn finish(&self) -> Result<(), TsigError> {
        if self.signed == 0 {
            return Err(TsigError::Unsigned);
        }
        if self.unsigned_run > 0 {
            return Err(TsigError::UnsignedEnd);
        }
        Ok(())
    }

    fn unsigned(&mut self, message: &[u8]) -> Result<Verified, TsigError> {
        if self.signed == 0 {
            return Err(TsigError::Unsigned);
        }
        self.unsigned_run += 1;
        if self.unsigned_run > MAX_UNSIGNED_RUN {
            return Err(TsigError::TooManyUnsigned);
        }
        let mut context = self.take_pending();
        context.update(message);
        self.pending = Some(context);
        Ok(Verified::Unsigned)
    }

    fn take_pending(&mut self) -> hmac::Context {
        self.pending
            .take()
            .unwrap_or_else(|| start_chain(&self.hmac_key, &self.prior_mac))
    }

    fn peer_error(&self, tsig: &TsigRecord<'_>) -> TsigError {
        match tsig.error {
            error_code::BADSIG => TsigError::PeerBadSig,
            error_code::BADKEY => TsigError::PeerBadKey {
                key: self.key.name.clone(),
            },
            error_code::BADTIME => TsigError::PeerBadTime {
                peer_time: read_u48(tsig.other).unwrap_or(0),
            },
            code => TsigError::PeerError(code),
        }
    }
}

/// Signs the messages of an answer, chaining MACs as a master does. Used to
/// serve transfers and, in tests, to play a master.
pub struct ResponseSigner {
    key: TsigKey,
    hmac_key: hmac::Key,
    prior_mac: Vec<u8>,
    pending: Option<hmac::Context>,
    signed: usize,
}

impl fmt::Debug for ResponseSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseSigner")
            .field("key", &self.key)
            .field("signed", &self.signed)
            .finish_non_exhaustive()
    }
}

impl ResponseSigner {
    /// A signer for the answer to a request whose MAC was `request_mac`.
    pub fn new(key: &TsigKey, request_mac: Vec<u8>) -> ResponseSigner {
        ResponseSigner {
            key: key.canonical(),
            hmac_key: key.hmac_key(),
            prior_mac: request_mac,
            pending: None,
            signed: 0,
        }
    }

    /// Signs the next message (appends its TSIG record).
    pub fn sign(&mut self, message: &mut Vec<u8>, now: u64) -> Result<(), TsigError> {
        let context = self
            .pending
            .take()
            .unwrap_or_else(|| start_chain(&self.hmac_key, &self.prior_mac));
        let variables = if self.signed == 0 {
            Variables::Full
        } else {
            Variables::Timers
        };
        self.prior_mac = sign_message(&self.key, context, message, &Fields::at(now), variables)?;
        self.signed += 1;
        Ok(())
    }

    /// Sends the next message unsigned: the next signed message covers it.
    pub fn skip(&mut self, message: &[u8]) {
        let mut context = self
            .pending
            .take()
            .unwrap_or_else(|| start_chain(&self.hmac_key, &self.prior_mac));
        context.update(message);
        self.pending = Some(context);
    }
}

/// Which TSIG fields a MAC covers: all of them for a request and the first
/// answer message, only the timers for later messages (RFC 8945 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variables {
    Full,
    Timers,
}

/// A TSIG record found at the end of a message.
#[derive(Debug)]
struct TsigRecord<'a> {
    /// Offset of the record's owner name.
    start: usize,
    /// Key name, uncompressed, as sent.
    key_name: Vec<u8>,
    /// Algorithm name, uncompressed.
    algorithm: Vec<u8>,
    time: u64,
    fudge: u16,
    mac: &'a [u8],
    original_id: u16,
    error: u16,
    other: &'a [u8],
}

/// Starts a chained digest: the prior MAC with its length (§5.3.1).
fn start_chain(key: &hmac::Key, prior_mac: &[u8]) -> hmac::Context {
    let mut context = hmac::Context::with_key(key);
    if !prior_mac.is_empty() {
        // A MAC is at most 64 bytes: the length always fits.
        context.update(&(prior_mac.len() as u16).to_be_bytes());
        context.update(prior_mac);
    }
    context
}

/// The fields of a TSIG record we write, besides names and MAC.
#[derive(Debug)]
struct Fields<'a> {
    /// Time Signed (48 bits are written).
    time: u64,
    /// TSIG error code.
    error: u16,
    /// Other Data (our time, in a BADTIME answer).
    other: &'a [u8],
}

impl Fields<'_> {
    /// The fields of an ordinary signature made at `now`.
    fn at(now: u64) -> Fields<'static> {
        Fields {
            time: now,
            error: 0,
            other: &[],
        }
    }
}

/// Computes the MAC of `message` (which has no TSIG yet) on top of what
/// `context` already holds, then appends the TSIG record. Returns the MAC.
fn sign_message(
    key: &TsigKey,
    mut context: hmac::Context,
    message: &mut Vec<u8>,
    fields: &Fields<'_>,
    variables: Variables,
) -> Result<Vec<u8>, TsigError> {
    if message.len() < 12 {
        return Err(TsigError::Malformed("message shorter than its header"));
    }
    let time = fields.time & 0xffff_ffff_ffff;
    context.update(message);
    match variables {
        Variables::Full => {
            context.update(key.name.as_wire());
            context.update(&class::ANY.to_be_bytes());
            context.update(&0u32.to_be_bytes());
            context.update(key.algorithm.wire_name());
            digest_timers(&mut context, time, DEFAULT_FUDGE);
            context.update(&fields.error.to_be_bytes());
            // Other Data is our 6-byte time at most.
            context.update(&(fields.other.len() as u16).to_be_bytes());
            context.update(fields.other);
        }
        Variables::Timers => digest_timers(&mut context, time, DEFAULT_FUDGE),
    }
    let mac = context.sign().as_ref().to_vec();
    append_tsig_record(
        message,
        key.name.as_wire(),
        key.algorithm.wire_name(),
        fields,
        &mac,
    )?;
    Ok(mac)
}

/// Appends a TSIG record (names in uncompressed wire form) to `message` and
/// counts it in ARCOUNT; the Original ID is the message's ID.
fn append_tsig_record(
    message: &mut Vec<u8>,
    key_name: &[u8],
    algorithm: &[u8],
    fields: &Fields<'_>,
    mac: &[u8],
) -> Result<(), TsigError> {
    let header = message
        .get(..12)
        .ok_or(TsigError::Malformed("message shorter than its header"))?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let arcount = u16::from_be_bytes([header[10], header[11]])
        .checked_add(1)
        .ok_or(TsigError::Malformed("additional section full"))?;
    let rdlength = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + fields.other.len();
    let rdlength =
        u16::try_from(rdlength).map_err(|_| TsigError::Malformed("TSIG record too long"))?;
    message.extend_from_slice(key_name);
    message.extend_from_slice(&rtype::TSIG.to_be_bytes());
    message.extend_from_slice(&class::ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&rdlength.to_be_bytes());
    message.extend_from_slice(algorithm);
    message.extend_from_slice(&(fields.time & 0xffff_ffff_ffff).to_be_bytes()[2..]);
    message.extend_from_slice(&DEFAULT_FUDGE.to_be_bytes());
    // A MAC is at most 64 bytes.
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&fields.error.to_be_bytes());
    message.extend_from_slice(&(fields.other.len() as u16).to_be_bytes());
    message.extend_from_slice(fields.other);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    Ok(())
}

/// Sets the RCODE (low four bits of the flags) of a message.
fn set_rcode(message: &mut [u8], code: u16) -> Result<(), TsigError> {
    let flags = message
        .get_mut(3)
        .ok_or(TsigError::Malformed("message shorter than its header"))?;
    *flags = (*flags & 0xf0) | (code & 0x0f) as u8;
    Ok(())
}

/// The key among `keys` named as in `tsig`, which must use its algorithm.
fn request_key<'k>(
    keys: &'k [Arc<TsigKey>],
    tsig: &TsigRecord<'_>,
) -> Result<&'k Arc<TsigKey>, TsigError> {
    let key = keys
        .iter()
        .find(|key| key.name.as_wire().eq_ignore_ascii_case(&tsig.key_name))
        .ok_or_else(|| TsigError::UnknownKey {
            found: crate::zone::name::display_wire(&tsig.key_name),
        })?;
    if TsigAlgorithm::from_wire_name(&tsig.algorithm) != Some(key.algorithm) {
        return Err(TsigError::WrongAlgorithm {
            expected: key.algorithm,
            found: crate::zone::name::display_wire(&tsig.algorithm),
        });
    }
    Ok(key)
}

/// Feeds a signed message without its TSIG record: the header with the
/// original ID and ARCOUNT less one, then everything before the record.
fn digest_signed_message(
    context: &mut hmac::Context,
    message: &[u8],
    tsig: &TsigRecord<'_>,
) -> Result<(), TsigError> {
    let mut header = [0u8; 12];
    header.copy_from_slice(
        message
            .get(..12)
            .ok_or(TsigError::Malformed("message shorter than its header"))?,
    );
    header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]);
    // find_tsig found the record in the additional section: ARCOUNT >= 1.
    header[10..12].copy_from_slice(&arcount.saturating_sub(1).to_be_bytes());
    context.update(&header);
    context.update(message.get(12..tsig.start).unwrap_or(&[]));
    Ok(())
}

/// Feeds the TSIG variables of the first answer message (§4.3.3), names in
/// canonical form.
fn digest_variables(context: &mut hmac::Context, key: &TsigKey, tsig: &TsigRecord<'_>) {
    context.update(key.name.as_wire());
    context.update(&class::ANY.to_be_bytes());
    context.update(&0u32.to_be_bytes());
    context.update(key.algorithm.wire_name());
    digest_timers(context, tsig.time, tsig.fudge);
    context.update(&tsig.error.to_be_bytes());
    // `other` came from a 16-bit length field.
    context.update(&(tsig.other.len() as u16).to_be_bytes());
    context.update(tsig.other);
}

fn digest_timers(context: &mut hmac::Context, time: u64, fudge: u16) {
    context.update(&time.to_be_bytes()[2..]);
    context.update(&fudge.to_be_bytes());
}

/// Finds the TSIG record, which must be the last record of the message.
/// `Ok(None)` when the message has none.
fn find_tsig(message: &[u8]) -> Result<Option<TsigRecord<'_>>, TsigError> {
    const SHORT: TsigError = TsigError::Malformed("message ends inside a record");
    let header = message
        .get(..12)
        .ok_or(TsigError::Malformed("message shorter than its header"))?;
    let count = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let (questions, records, additional) = (count(4), count(6) + count(8), count(10));
    if additional == 0 {
        return Ok(None);
    }
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(message, pos).ok_or(SHORT)? + 4;
    }
    let mut last = pos;
    for _ in 0..records + additional {
        last = pos;
        let name_end = skip_name(message, pos).ok_or(SHORT)?;
        let fixed = message.get(name_end..name_end + 10).ok_or(SHORT)?;
        let code = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        pos = name_end + 10 + rdlength;
        if pos > message.len() {
            return Err(SHORT);
        }
        if code == rtype::TSIG && pos != message.len() {
            return Err(TsigError::Malformed("TSIG record is not the last record"));
        }
    }
    if pos != message.len() {
        return Err(TsigError::Malformed("bytes after the last record"));
    }
    let mut key_name = Vec::new();
    let name_end = read_name(message, last, &mut key_name).ok_or(SHORT)?;
    let fixed = message.get(name_end..name_end + 10).ok_or(SHORT)?;
    if u16::from_be_bytes([fixed[0], fixed[1]]) != rtype::TSIG {
        return Ok(None);
    }
    if u16::from_be_bytes([fixed[2], fixed[3]]) != class::ANY {
        return Err(TsigError::Malformed("TSIG class is not ANY"));
    }
    // The MAC does not cover the TTL; RFC 8945 §4.2 fixes it at zero.
    if fixed[4..8] != [0, 0, 0, 0] {
        return Err(TsigError::Malformed("TSIG TTL is not zero"));
    }
    parse_tsig_rdata(message, last, key_name, name_end + 10).map(Some)
}

/// Reads the TSIG RDATA starting at `pos`, which runs to the end of message.
fn parse_tsig_rdata(
    message: &[u8],
    start: usize,
    key_name: Vec<u8>,
    pos: usize,
) -> Result<TsigRecord<'_>, TsigError> {
    const BAD: TsigError = TsigError::Malformed("TSIG record data cannot be read");
    let mut algorithm = Vec::new();
    let mut pos = read_name(message, pos, &mut algorithm).ok_or(BAD)?;
    let mut take = |len: usize| -> Result<&[u8], TsigError> {
        let field = message.get(pos..pos + len).ok_or(BAD)?;
        pos += len;
        Ok(field)
    };
    let time = read_u48(take(6)?).ok_or(BAD)?;
    let fudge = read_u16(take(2)?);
    let mac_len = usize::from(read_u16(take(2)?));
    let mac = take(mac_len)?;
    let original_id = read_u16(take(2)?);
    let error = read_u16(take(2)?);
    let other_len = usize::from(read_u16(take(2)?));
    let other = take(other_len)?;
    if pos != message.len() {
        return Err(BAD);
    }
    Ok(TsigRecord {
        start,
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn read_u48(bytes: &[u8]) -> Option<u64> {
    let bytes = bytes.get(..6)?;
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_790_000_000;

    fn key(secret: &[u8]) -> TsigKey {
        TsigKey::new(
            &Name::parse("XFR-Key.").unwrap(),
            TsigAlgorithm::HmacSha256,
            secret.to_vec(),
        )
    }

    /// A minimal message: header with this id and one question.
    fn message(id: u16, flags: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x07example\x04test\x00\x00\xfc\x00\x01");
        m
    }

    /// An answer stream of `count` messages, signed where `signed[i]`.
    fn stream(key: &TsigKey, request_mac: &[u8], signed: &[bool]) -> Vec<Vec<u8>> {
        let mut signer = ResponseSigner::new(key, request_mac.to_vec());
        signed
            .iter()
            .map(|&sign| {
                let mut m = message(7, 0x8400);
                if sign {
                    signer.sign(&mut m, NOW).unwrap();
                } else {
                    signer.skip(&m);
                }
                m
            })
            .collect()
    }

    fn verify_all(
        key: &TsigKey,
        request_mac: &[u8],
        messages: &[Vec<u8>],
        now: u64,
    ) -> Result<(), TsigError> {
        let mut verifier = ResponseVerifier::new(key, request_mac.to_vec());
        for m in messages {
            verifier.verify(m, now)?;
        }
        verifier.finish()
    }

    #[test]
    fn algorithm_names_round_trip() {
        for name in ["hmac-sha256", "HMAC-SHA384.", "hmac-sha512"] {
            let algorithm = TsigAlgorithm::from_name(name).unwrap();
            assert!(name.to_lowercase().starts_with(algorithm.name()));
            assert_eq!(
                TsigAlgorithm::from_wire_name(algorithm.wire_name()),
                Some(algorithm)
            );
        }
        assert_eq!(TsigAlgorithm::from_name("hmac-md5"), None);
        assert_eq!(TsigAlgorithm::from_name("hmac-sha1"), None);
        assert_eq!(TsigAlgorithm::HmacSha384.mac_len(), 48);
    }

    #[test]
    fn secret_is_not_in_debug_output() {
        let text = format!("{:?}", key(b"very-secret"));
        assert!(!text.contains("very"), "{text}");
    }

    #[test]
    fn request_mac_matches_rfc_8945_layout() {
        // The MAC of a signed request equals an HMAC over the message and
        // the TSIG variables, computed independently here.
        let key = key(b"secret");
        let mut m = message(0x1234, 0);
        let original = m.clone();
        let mac = sign_request(&key, &mut m, NOW).unwrap();
        let mut data = original;
        data.extend_from_slice(b"\x07xfr-key\x00");
        data.extend_from_slice(&[0, 255, 0, 0, 0, 0]);
        data.extend_from_slice(b"\x0bhmac-sha256\x00");
        data.extend_from_slice(&NOW.to_be_bytes()[2..]);
        data.extend_from_slice(&300u16.to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 0]);
        let expected = hmac::sign(&key.hmac_key(), &data);
        assert_eq!(mac, expected.as_ref());
        assert_eq!(&m[10..12], &[0, 1]);
        let tsig = find_tsig(&m).unwrap().unwrap();
        assert_eq!(tsig.mac, &mac[..]);
        assert_eq!(tsig.original_id, 0x1234);
        assert_eq!(tsig.key_name, b"\x07xfr-key\x00");
    }

    #[test]
    fn key_built_from_fields_is_used_in_canonical_form() {
        let mixed = TsigKey {
            name: Name::parse("XFR-Key.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"secret".to_vec(),
        };
        let mut from_fields = message(1, 0);
        let mut canonical = from_fields.clone();
        let mac = sign_request(&mixed, &mut from_fields, NOW).unwrap();
        assert_eq!(
            mac,
            sign_request(&key(b"secret"), &mut canonical, NOW).unwrap()
        );
        assert_eq!(from_fields, canonical);
        let messages = stream(&key(b"secret"), b"rm", &[true, true]);
        verify_all(&mixed, b"rm", &messages, NOW).unwrap();
    }

    #[test]
    fn chained_stream_verifies() {
        let key = key(b"secret");
        let messages = stream(&key, b"request-mac", &[true, true, true]);
        verify_all(&key, b"request-mac", &messages, NOW).unwrap();
    }

    #[test]
    fn unsigned_intermediate_messages_are_covered_by_the_next_mac() {
        let key = key(b"secret");
        let messages = stream(&key, b"rm", &[true, false, false, true, false, true]);
        verify_all(&key, b"rm", &messages, NOW).unwrap();
    }

    #[test]
    fn first_message_must_be_signed() {
        let key = key(b"secret");
        let messages = stream(&key, b"rm", &[false, true]);
        assert_eq!(
            verify_all(&key, b"rm", &messages, NOW),
            Err(TsigError::Unsigned)
        );
    }

    #[test]
    fn last_message_must_be_signed() {
        let key = key(b"secret");
        let messages = stream(&key, b"rm", &[true, true, false]);
        assert_eq!(
            verify_all(&key, b"rm", &messages, NOW),
            Err(TsigError::UnsignedEnd)
        );
    }

    #[test]
    fn at_most_99_unsigned_in_a_row() {
        let key = key(b"secret");
        let mut pattern = vec![true];
        pattern.extend(std::iter::repeat_n(false, 99));
        pattern.push(true);
        let messages = stream(&key, b"rm", &pattern);
        verify_all(&key, b"rm", &messages, NOW).unwrap();
        pattern.insert(1, false);
        let messages = stream(&key, b"rm", &pattern);
        assert_eq!(
            verify_all(&key, b"rm", &messages, NOW),
            Err(TsigError::TooManyUnsigned)
        );
    }

    #[test]
    fn stripped_signature_in_the_middle_breaks_the_chain() {
        // The master signed all three; an attacker removes the middle TSIG.
        let key = key(b"secret");
        let mut messages = stream(&key, b"rm", &[true, true, true]);
        let tsig_start = find_tsig(&messages[1]).unwrap().unwrap().start;
        messages[1].truncate(tsig_start);
        messages[1][10..12].copy_from_slice(&[0, 0]);
        assert_eq!(
            verify_all(&key, b"rm", &messages, NOW),
            Err(TsigError::BadSig)
        );
    }

    #[test]
    fn altered_middle_message_fails() {
        let key = key(b"secret");
        let mut messages = stream(&key, b"rm", &[true, true, true]);
        messages[1][13] ^= 0x20; // a letter of the question name
        let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        assert_eq!(verifier.verify(&messages[0], NOW), Ok(Verified::Signed));
        assert_eq!(verifier.verify(&messages[1], NOW), Err(TsigError::BadSig));
    }

    #[test]
    fn wrong_secret_and_wrong_request_mac_fail() {
        let messages = stream(&key(b"secret"), b"rm", &[true]);
        assert_eq!(
            verify_all(&key(b"other"), b"rm", &messages, NOW),
            Err(TsigError::BadSig)
        );
        assert_eq!(
            verify_all(&key(b"secret"), b"another request", &messages, NOW),
            Err(TsigError::BadSig)
        );
    }

    #[test]
    fn wrong_key_name_and_algorithm_are_named() {
        let messages = stream(&key(b"secret"), b"rm", &[true]);
        let other = TsigKey::new(
            &Name::parse("other-key.").unwrap(),
            TsigAlgorithm::HmacSha256,
            b"secret".to_vec(),
        );
        assert!(matches!(
            verify_all(&other, b"rm", &messages, NOW),
            Err(TsigError::WrongKeyName { found, .. }) if found == "xfr-key."
        ));
        let mut sha512 = key(b"secret");
        sha512.algorithm = TsigAlgorithm::HmacSha512;
        assert!(matches!(
            verify_all(&sha512, b"rm", &messages, NOW),
            Err(TsigError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn skewed_clock_gives_badtime() {
        let key = key(b"secret");
        let messages = stream(&key, b"rm", &[true]);
        verify_all(&key, b"rm", &messages, NOW + 300).unwrap();
        assert_eq!(
            verify_all(&key, b"rm", &messages, NOW + 301),
            Err(TsigError::BadTime {
                signed: NOW,
                now: NOW + 301,
                fudge: 300
            })
        );
        assert!(matches!(
            verify_all(&key, b"rm", &messages, NOW - 3600),
            Err(TsigError::BadTime { .. })
        ));
    }

    #[test]
    fn peer_errors_are_reported() {
        let key = key(b"secret");
        // An unsigned BADKEY answer as RFC 8945 §5.3.2 describes.
        let mut m = message(7, 0x8009);
        m.extend_from_slice(b"\x07xfr-key\x00\x00\xfa\x00\xff\x00\x00\x00\x00");
        let mut rdata = b"\x0bhmac-sha256\x00".to_vec();
        rdata.extend_from_slice(&NOW.to_be_bytes()[2..]);
        rdata.extend_from_slice(&[1, 44, 0, 0, 0, 7, 0, 17, 0, 0]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        m[11] = 1;
        let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        assert!(matches!(
            verifier.verify(&m, NOW),
            Err(TsigError::PeerBadKey { .. })
        ));
    }

    /// The keys a server knows: `xfr-key.` (the one `key` builds) and another.
    fn server_keys(secret: &[u8]) -> Vec<Arc<TsigKey>> {
        vec![
            Arc::new(TsigKey::new(
                &Name::parse("other-key.").unwrap(),
                TsigAlgorithm::HmacSha512,
                b"another secret".to_vec(),
            )),
            Arc::new(key(secret)),
        ]
    }

    fn signed_request(key: &TsigKey, at: u64) -> (Vec<u8>, Vec<u8>) {
        let mut request = message(0x4242, 0);
        let mac = sign_request(key, &mut request, at).unwrap();
        (request, mac)
    }

    /// An answer skeleton to `request`: its header with QR set, no TSIG.
    fn answer_to(request: &[u8]) -> Vec<u8> {
        message(u16::from_be_bytes([request[0], request[1]]), 0x8400)
    }

    #[test]
    fn signed_request_verifies_and_names_its_key_and_mac() {
        let keys = server_keys(b"secret");
        let (request, mac) = signed_request(&key(b"secret"), NOW);
        let (found, request_mac) = verify_request(&keys, &request, NOW + 10)
            .unwrap()
            .expect("signed");
        assert!(Arc::ptr_eq(&found, &keys[1]));
        assert_eq!(request_mac, mac);
        // The answer signed for that request verifies at the client.
        let mut signer = ResponseSigner::new(&found, request_mac);
        let mut answer = answer_to(&request);
        signer.sign(&mut answer, NOW).unwrap();
        verify_all(&key(b"secret"), &mac, &[answer], NOW).unwrap();
    }

    #[test]
    fn unsigned_request_is_none() {
        assert_eq!(
            verify_request(&server_keys(b"secret"), &message(1, 0), NOW),
            Ok(None)
        );
    }

    #[test]
    fn key_name_case_does_not_matter_for_requests() {
        let mut request = message(1, 0);
        let mixed = TsigKey {
            name: Name::parse("XFR-KEY.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"secret".to_vec(),
        };
        sign_request(&mixed, &mut request, NOW).unwrap();
        let server = vec![Arc::new(mixed)];
        assert!(verify_request(&server, &request, NOW).unwrap().is_some());
    }

    #[test]
    fn tampered_request_is_badsig() {
        let (mut request, _) = signed_request(&key(b"secret"), NOW);
        request[13] ^= 0x20;
        let error = verify_request(&server_keys(b"secret"), &request, NOW).unwrap_err();
        assert_eq!(error, TsigError::BadSig);
        assert_eq!(error.request_error_code(), Some(error_code::BADSIG));
    }

    #[test]
    fn wrong_secret_is_badsig_and_unknown_key_is_badkey() {
        let (request, _) = signed_request(&key(b"wrong secret"), NOW);
        assert_eq!(
            verify_request(&server_keys(b"secret"), &request, NOW),
            Err(TsigError::BadSig)
        );
        let stranger = TsigKey::new(
            &Name::parse("stranger.").unwrap(),
            TsigAlgorithm::HmacSha256,
            b"secret".to_vec(),
        );
        let (request, _) = signed_request(&stranger, NOW);
        let error = verify_request(&server_keys(b"secret"), &request, NOW).unwrap_err();
        assert!(
            matches!(&error, TsigError::UnknownKey { found } if found == "stranger."),
            "{error:?}"
        );
        assert_eq!(error.request_error_code(), Some(error_code::BADKEY));
    }

    #[test]
    fn wrong_algorithm_is_badkey() {
        let mut sha384 = key(b"secret");
        sha384.algorithm = TsigAlgorithm::HmacSha384;
        let (request, _) = signed_request(&sha384, NOW);
        let error = verify_request(&server_keys(b"secret"), &request, NOW).unwrap_err();
        assert!(
            matches!(error, TsigError::WrongAlgorithm { .. }),
            "{error:?}"
        );
        assert_eq!(error.request_error_code(), Some(error_code::BADKEY));
    }

    #[test]
    fn skewed_request_clock_is_badtime_within_the_request_fudge() {
        let keys = server_keys(b"secret");
        let (request, _) = signed_request(&key(b"secret"), NOW);
        assert!(verify_request(&keys, &request, NOW - 300).is_ok());
        let error = verify_request(&keys, &request, NOW + 301).unwrap_err();
        assert_eq!(
            error,
            TsigError::BadTime {
                signed: NOW,
                now: NOW + 301,
                fudge: 300
            }
        );
        assert_eq!(error.request_error_code(), Some(error_code::BADTIME));
    }

    #[test]
    fn badkey_and_badsig_answers_are_unsigned_notauth() {
        let keys = server_keys(b"secret");
        let (request, mac) = signed_request(&key(b"wrong secret"), NOW);
        let error = verify_request(&keys, &request, NOW).unwrap_err();
        let mut answer = answer_to(&request);
        tsig_error_answer(&keys, &request, &error, &mut answer, NOW).unwrap();
        assert_eq!(answer[3] & 0x0f, rcode::NOTAUTH as u8);
        let tsig = find_tsig(&answer).unwrap().expect("a TSIG record");
        assert!(tsig.mac.is_empty());
        assert_eq!(tsig.error, error_code::BADSIG);
        assert_eq!(tsig.key_name, b"\x07xfr-key\x00");
        let mut verifier = ResponseVerifier::new(&key(b"wrong secret"), mac);
        assert_eq!(verifier.verify(&answer, NOW), Err(TsigError::PeerBadSig));

        let error = TsigError::UnknownKey {
            found: "xfr-key.".into(),
        };
        let mut answer = answer_to(&request);
        tsig_error_answer(&[], &request, &error, &mut answer, NOW).unwrap();
        let tsig = find_tsig(&answer).unwrap().expect("a TSIG record");
        assert_eq!((tsig.error, tsig.mac.len()), (error_code::BADKEY, 0));
    }

    #[test]
    fn badtime_answer_is_signed_and_carries_our_clock() {
        let keys = server_keys(b"secret");
        let (request, mac) = signed_request(&key(b"secret"), NOW);
        let ours = NOW + 3600;
        let error = verify_request(&keys, &request, ours).unwrap_err();
        let mut answer = answer_to(&request);
        tsig_error_answer(&keys, &request, &error, &mut answer, ours).unwrap();
        assert_eq!(answer[3] & 0x0f, rcode::NOTAUTH as u8);
        let tsig = find_tsig(&answer).unwrap().expect("a TSIG record");
        assert_eq!(tsig.time, NOW, "Time Signed is the request's");
        assert_eq!(read_u48(tsig.other), Some(ours));
        // The client, whose clock says NOW, verifies the MAC and reads the error.
        let mut verifier = ResponseVerifier::new(&key(b"secret"), mac);
        assert_eq!(
            verifier.verify(&answer, NOW),
            Err(TsigError::PeerBadTime { peer_time: ours })
        );
    }

    #[test]
    fn malformed_tsig_gets_formerr_without_a_record() {
        let mut answer = answer_to(&message(1, 0));
        let error = TsigError::Malformed("test");
        tsig_error_answer(&[], &message(1, 0), &error, &mut answer, NOW).unwrap();
        assert_eq!(answer[3] & 0x0f, rcode::FORMERR as u8);
        assert_eq!(&answer[10..12], &[0, 0]);
    }

    #[test]
    fn garbage_requests_never_panic() {
        let keys = server_keys(b"secret");
        let (good, _) = signed_request(&key(b"secret"), NOW);
        for cut in 0..good.len() {
            let _ = verify_request(&keys, &good[..cut], NOW);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            if let Err(error) = verify_request(&keys, &bad, NOW) {
                let mut answer = answer_to(&good);
                let _ = tsig_error_answer(&keys, &bad, &error, &mut answer, NOW);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let key = key(b"secret");
        let good = stream(&key, b"rm", &[true]).remove(0);
        for cut in 0..good.len() {
            let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
            assert!(verifier.verify(&good[..cut], NOW).is_err());
        }
        for i in 0..good.len() {
            for bit in [0x01, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
                let _ = verifier.verify(&bad, NOW);
            }
        }
    }
}
