//! RFC 1035 master-file (zone file) parser.
//!
//! The whole file is read at once and cut into tokens that borrow from the
//! buffer. Each record's owner and data are built in two buffers reused from
//! record to record and handed to a callback, so the common path does not
//! allocate. Supported: `$ORIGIN`, `$TTL` (BIND units), `$INCLUDE file
//! [origin]` (confined to the zone file's directory), `@`, relative names,
//! blank owners, parentheses across lines, comments, quoted strings, `\DDD`
//! and `\X` escapes, class and TTL in either order, `TYPEnnn`, `CLASSnnn` and
//! RFC 3597 `\#` data. The record data formats live in
//! [`rdata_text`](super::rdata_text).
//!
//! An included file starts with the includer's origin (or the one given),
//! TTL defaults and owner; the includer's own are restored after it, as Knot
//! does. TTLs above 2^31 - 1 are refused (RFC 2181 §8). Parsing stops at the
//! first problem.

use std::fs;
use std::path::{Path, PathBuf};

use super::name::{self, Name};
use super::rdata_text::{self, Token, rdata_from_text};
use super::rr::{self, class, rtype};

/// How deep `$INCLUDE` may nest unless configured otherwise.
pub const DEFAULT_MAX_INCLUDE_DEPTH: usize = 8;

/// Largest TTL a zone may give (RFC 2181 §8).
pub const MAX_TTL: u32 = 0x7fff_ffff;

/// What the parser needs to know about the zone being read.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// The zone apex in lowercase: the initial origin.
    pub origin: Name,
    /// The zone's class (normally `class::IN`); records of another class are errors.
    pub default_class: u16,
    /// How deep `$INCLUDE` may nest; 0 refuses `$INCLUDE` altogether.
    pub max_include_depth: usize,
}

impl MasterOptions {
    /// Options for a zone of class IN at `origin`, with the default include depth.
    pub fn new(origin: &Name) -> MasterOptions {
        MasterOptions {
            origin: origin.to_lowercase(),
            default_class: class::IN,
            max_include_depth: DEFAULT_MAX_INCLUDE_DEPTH,
        }
    }
}

/// One record as read from a master file, borrowed from the parser's buffers
/// for the duration of the callback.
#[derive(Debug, Clone, Copy)]
pub struct MasterRecord<'a> {
    /// Owner in uncompressed wire form, lowercase and absolute.
    pub owner: &'a [u8],
    /// Record class.
    pub class: u16,
    /// Record type.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// Uncompressed wire rdata; embedded names absolute, in the case written.
    pub rdata: &'a [u8],
    /// The file the record was read from (an included file for `$INCLUDE`).
    pub file: &'a Path,
    /// The line the record starts on (1-based).
    pub line: u32,
}

/// A master file that could not be read; displays as `file:line: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {}", .file.display(), .line, .message)]
pub struct MasterError {
    /// The file at fault (an included file for errors inside it).
    pub file: PathBuf,
    /// The line at fault; 0 when the file as a whole could not be read.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

impl MasterError {
    fn new(file: &Path, line: u32, message: impl Into<String>) -> MasterError {
        MasterError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Parses the zone file at `path`, calling `sink` once per record in file order.
///
/// `$INCLUDE` is confined to the directory of `path` and below: an include
/// whose canonical path leaves it is an error. If `sink` returns `Err(msg)`,
/// parsing stops with a [`MasterError`] at that record's location.
pub fn parse_file(
    path: &Path,
    opts: &MasterOptions,
    sink: &mut dyn FnMut(&MasterRecord<'_>) -> Result<(), String>,
) -> Result<(), MasterError> {
    let data = fs::read(path)
        .map_err(|e| MasterError::new(path, 0, format!("cannot read zone file: {e}")))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parse_bytes(&data, path, Some(dir), opts, sink)
}

/// Parses a zone file already in memory, calling `sink` once per record.
///
/// `file` only names the data in records and errors. `$INCLUDE` is refused
/// unless `include_dir` is given; include paths are then relative to it and
/// confined to it.
pub fn parse_bytes(
    data: &[u8],
    file: &Path,
    include_dir: Option<&Path>,
    opts: &MasterOptions,
    sink: &mut dyn FnMut(&MasterRecord<'_>) -> Result<(), String>,
) -> Result<(), MasterError> {
    let mut parser = Parser {
        opts,
        sink,
        include_base: include_dir.map(Path::to_path_buf),
        include_root: None,
        state: State {
            origin: opts.origin.as_wire().to_vec(),
            default_ttl: None,
            last_ttl: None,
            have_owner: false,
        },
        owner: Vec::with_capacity(name::MAX_NAME_LEN),
        rdata: Vec::with_capacity(512),
    };
    parser.parse_source(data, file, include_dir, 0)
}

// ---------------------------------------------------------------------------
// Lexer.

const NORMAL: u8 = 0;
const SPACE: u8 = 1;
const NEWLINE: u8 = 2;
const SPECIAL: u8 = 3;
const ESCAPE: u8 = 4;

/// What each byte means to the lexer; everything else is part of a token.
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut table = [NORMAL; 256];
    table[b' ' as usize] = SPACE;
    table[b'\t' as usize] = SPACE;
    table[b'\r' as usize] = SPACE;
    table[b'\n' as usize] = NEWLINE;
    table[b';' as usize] = SPECIAL;
    table[b'(' as usize] = SPECIAL;
    table[b')' as usize] = SPECIAL;
    table[b'"' as usize] = SPECIAL;
    table[b'\\' as usize] = ESCAPE;
    table
}

/// Cuts a master file into entries: the tokens of one record or directive,
/// which end at a newline outside parentheses.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
    /// Line of the byte at `pos`, 1-based.
    line: u32,
}

/// Where an entry starts and whether its owner field is blank.
#[derive(Debug, Clone, Copy)]
struct Entry {
    line: u32,
    blank_owner: bool,
}

struct LexError {
    line: u32,
    message: &'static str,
}

impl<'a> Lexer<'a> {
    fn new(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            line: 1,
        }
    }

    /// The next entry with at least one token, its tokens in `tokens`.
    fn next_entry(&mut self, tokens: &mut Vec<Token<'a>>) -> Result<Option<Entry>, LexError> {
        loop {
            tokens.clear();
            let Some(&first) = self.data.get(self.pos) else {
                return Ok(None);
            };
            let blank_owner = first == b' ' || first == b'\t';
            if let Some(line) = self.logical_line(tokens)? {
                return Ok(Some(Entry { line, blank_owner }));
            }
        }
    }

    /// Reads tokens up to a newline outside parentheses (consumed) or the end
    /// of the data. Returns the line of the first token, if any.
    fn logical_line(&mut self, tokens: &mut Vec<Token<'a>>) -> Result<Option<u32>, LexError> {
        let mut depth = 0u32;
        let mut open_line = 0;
        let mut first_line = None;
        while let Some(&b) = self.data.get(self.pos) {
            match BYTE_CLASS[usize::from(b)] {
                SPACE => self.pos += 1,
                NEWLINE => {
                    self.pos += 1;
                    self.line = self.line.saturating_add(1);
                    if depth == 0 {
                        return Ok(first_line);
                    }
                }
                SPECIAL if b == b';' => self.skip_comment(),
                SPECIAL if b == b'(' => {
                    if depth == 0 {
                        open_line = self.line;
                    }
                    depth = depth.saturating_add(1);
                    self.pos += 1;
                }
                SPECIAL if b == b')' => {
                    if depth == 0 {
                        return Err(self.error("`)` without a matching `(`"));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                SPECIAL => {
                    first_line.get_or_insert(self.line);
                    let token = self.quoted()?;
                    tokens.push(token);
                }
                _ => {
                    first_line.get_or_insert(self.line);
                    let token = self.plain();
                    tokens.push(token);
                }
            }
        }
        if depth > 0 {
            return Err(LexError {
                line: open_line,
                message: "`(` is never closed",
            });
        }
        Ok(first_line)
    }

    fn error(&self, message: &'static str) -> LexError {
        LexError {
            line: self.line,
            message,
        }
    }

    /// Skips to the newline that ends a comment, leaving it to be read.
    fn skip_comment(&mut self) {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    }

    /// An unquoted token: up to a space, newline or special character; a
    /// backslash takes the next byte along (except a newline).
    fn plain(&mut self) -> Token<'a> {
        let data = self.data;
        let start = self.pos;
        let mut pos = start;
        while let Some(&b) = data.get(pos) {
            match BYTE_CLASS[usize::from(b)] {
                NORMAL => pos += 1,
                ESCAPE => {
                    pos += 1;
                    if data.get(pos).is_some_and(|&c| c != b'\n') {
                        pos += 1;
                    }
                }
                _ => break,
            }
        }
        self.pos = pos;
        Token::plain(&data[start..pos])
    }

    /// A quoted token, which must close on its line; `\"` does not close it.
    fn quoted(&mut self) -> Result<Token<'a>, LexError> {
        let data = self.data;
        let start = self.pos + 1;
        let mut pos = start;
        loop {
            match data.get(pos) {
                None | Some(b'\n') => {
                    return Err(self.error("quoted string not closed on its line"));
                }
                Some(b'"') => {
                    self.pos = pos + 1;
                    return Ok(Token::quoted(&data[start..pos]));
                }
                Some(b'\\') if data.get(pos + 1).is_some_and(|&c| c != b'\n') => pos += 2,
                Some(_) => pos += 1,
            }
        }
    }
}

/// Cuts one line of presentation text into tokens, for tests of record data.
#[cfg(test)]
pub(crate) fn tokens_of(text: &[u8]) -> Result<Vec<Token<'_>>, String> {
    let mut lexer = Lexer::new(text);
    let mut tokens = Vec::new();
    if let Err(e) = lexer.logical_line(&mut tokens) {
        return Err(e.message.to_string());
    }
    if lexer.pos < text.len() {
        return Err("more than one line".to_string());
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Parser.

/// Settings a master file changes as it goes; `$INCLUDE` restores them.
#[derive(Debug, Clone)]
struct State {
    /// Current `$ORIGIN`, wire form, case as written.
    origin: Vec<u8>,
    /// `$TTL`, if set.
    default_ttl: Option<u32>,
    /// The last TTL given on a record (the RFC 1035 default without `$TTL`).
    last_ttl: Option<u32>,
    /// Whether `Parser::owner` holds a name a blank owner can refer to.
    have_owner: bool,
}

/// A problem at the current entry, or one inside an included file that
/// already carries its own location.
enum Fault {
    Here(String),
    Nested(MasterError),
}

impl From<String> for Fault {
    fn from(message: String) -> Self {
        Fault::Here(message)
    }
}

impl From<&str> for Fault {
    fn from(message: &str) -> Self {
        Fault::Here(message.to_string())
    }
}

impl Fault {
    fn at(self, file: &Path, line: u32) -> MasterError {
        match self {
            Fault::Here(message) => MasterError::new(file, line, message),
            Fault::Nested(error) => error,
        }
    }
}

/// The fields between the owner and the record data.
struct Header<'t, 'a> {
    ttl: u32,
    class: u16,
    rtype: u16,
    data: &'t [Token<'a>],
}

struct Parser<'p> {
    opts: &'p MasterOptions,
    sink: &'p mut dyn FnMut(&MasterRecord<'_>) -> Result<(), String>,
    /// The directory includes are confined to, as given.
    include_base: Option<PathBuf>,
    /// Its canonical form, found at the first `$INCLUDE`.
    include_root: Option<PathBuf>,
    state: State,
    /// Current owner, lowercase wire form.
    owner: Vec<u8>,
    /// Data of the current record.
    rdata: Vec<u8>,
}

impl Parser<'_> {
    /// Parses one file; `dir` is where its relative `$INCLUDE`s are (None: refused).
    fn parse_source(
        &mut self,
        data: &[u8],
        file: &Path,
        dir: Option<&Path>,
        depth: usize,
    ) -> Result<(), MasterError> {
        let mut lexer = Lexer::new(data);
        let mut tokens: Vec<Token<'_>> = Vec::with_capacity(16);
        // The owner token the current owner was built from, to skip
        // rebuilding it for consecutive records of one name.
        let mut owner_text: Option<&[u8]> = None;
        loop {
            let entry = match lexer.next_entry(&mut tokens) {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(()),
                Err(e) => return Err(MasterError::new(file, e.line, e.message)),
            };
            let is_directive = !entry.blank_owner
                && tokens
                    .first()
                    .is_some_and(|t| !t.quoted && t.text.first() == Some(&b'$'));
            let result = if is_directive {
                owner_text = None;
                self.directive(&tokens, dir, depth)
            } else {
                self.record(&tokens, entry, file, &mut owner_text)
            };
            result.map_err(|fault| fault.at(file, entry.line))?;
        }
    }

    fn record<'a>(
        &mut self,
        tokens: &[Token<'a>],
        entry: Entry,
        file: &Path,
        owner_text: &mut Option<&'a [u8]>,
    ) -> Result<(), Fault> {
        let mut rest = tokens;
        if !entry.blank_owner {
            let Some((owner, tail)) = tokens.split_first() else {
                return Ok(());
            };
            rest = tail;
            if *owner_text != Some(owner.text) {
                *owner_text = None;
                self.set_owner(owner.text)?;
                *owner_text = Some(owner.text);
            }
        } else if !self.state.have_owner {
            return Err("blank owner but no previous record to take it from".into());
        }
        let header = self.header(rest)?;
        self.rdata.clear();
        rdata_from_text(
            header.rtype,
            header.data,
            &self.state.origin,
            &mut self.rdata,
        )
        .map_err(|e| format!("{} record: {e}", rr::rtype_name(header.rtype)))?;
        let record = MasterRecord {
            owner: &self.owner,
            class: header.class,
            rtype: header.rtype,
            ttl: header.ttl,
            rdata: &self.rdata,
            file,
            line: entry.line,
        };
        (self.sink)(&record).map_err(Fault::Here)
    }

    fn set_owner(&mut self, text: &[u8]) -> Result<(), Fault> {
        self.owner.clear();
        self.state.have_owner = false;
        name::append_text_name(text, Some(&self.state.origin), &mut self.owner)
            .map_err(|e| format!("bad owner name `{}`: {e}", shown(text)))?;
        self.owner.make_ascii_lowercase();
        self.state.have_owner = true;
        Ok(())
    }

    /// Reads `[TTL] [class] type` (TTL and class in either order).
    fn header<'t, 'a>(&mut self, tokens: &'t [Token<'a>]) -> Result<Header<'t, 'a>, Fault> {
        let mut ttl = None;
        let mut class = None;
        let mut index = 0;
        let code = loop {
            let Some(token) = tokens.get(index) else {
                return Err("missing record type".into());
            };
            let text = token.text;
            if text.first().is_some_and(u8::is_ascii_digit) {
                if ttl.is_some() {
                    return Err(format!("unexpected `{}`: TTL given twice", shown(text)).into());
                }
                ttl = Some(record_ttl(text)?);
            } else if let Some(code) = class_code(text) {
                if class.is_some() {
                    return Err(format!("unexpected `{}`: class given twice", shown(text)).into());
                }
                class = Some(code);
            } else {
                break type_code(text)
                    .ok_or_else(|| format!("unknown record type `{}`", shown(text)))?;
            }
            index += 1;
        };
        let zone_class = self.opts.default_class;
        let class = class.unwrap_or(zone_class);
        if class != zone_class {
            return Err(format!(
                "class {} does not match the zone's class {}",
                class_name(class),
                class_name(zone_class)
            )
            .into());
        }
        if rr::is_meta_type(code) {
            let name = rr::rtype_name(code);
            return Err(format!("{name} is a meta type, not allowed in zone data").into());
        }
        Ok(Header {
            ttl: self.resolve_ttl(ttl)?,
            class,
            rtype: code,
            data: tokens.get(index + 1..).unwrap_or(&[]),
        })
    }

    /// A record's TTL: as given, else `$TTL`, else the last one given (RFC 1035).
    fn resolve_ttl(&mut self, given: Option<u32>) -> Result<u32, Fault> {
        if let Some(ttl) = given {
            self.state.last_ttl = Some(ttl);
            return Ok(ttl);
        }
        self.state
            .default_ttl
            .or(self.state.last_ttl)
            .ok_or_else(|| "no TTL: give one on the record or set $TTL".into())
    }

    fn directive(
        &mut self,
        tokens: &[Token<'_>],
        dir: Option<&Path>,
        depth: usize,
    ) -> Result<(), Fault> {
        let Some((keyword, args)) = tokens.split_first() else {
            return Ok(());
        };
        let keyword = keyword.text;
        if keyword.eq_ignore_ascii_case(b"$ORIGIN") {
            let [origin] = args else {
                return Err("$ORIGIN takes one domain name".into());
            };
            self.state.origin = self.name_from_origin(origin.text, "$ORIGIN")?;
            Ok(())
        } else if keyword.eq_ignore_ascii_case(b"$TTL") {
            let [ttl] = args else {
                return Err("$TTL takes one TTL".into());
            };
            self.state.default_ttl = Some(record_ttl(ttl.text)?);
            Ok(())
        } else if keyword.eq_ignore_ascii_case(b"$INCLUDE") {
            self.include(args, dir, depth)
        } else {
            Err(format!("unknown directive `{}`", shown(keyword)).into())
        }
    }

    /// A name relative to the current origin, for directives.
    fn name_from_origin(&self, text: &[u8], what: &str) -> Result<Vec<u8>, Fault> {
        let mut wire = Vec::with_capacity(text.len() + 2);
        name::append_text_name(text, Some(&self.state.origin), &mut wire)
            .map_err(|e| format!("bad {what} name `{}`: {e}", shown(text)))?;
        Ok(wire)
    }

    /// `$INCLUDE file [origin]`: parses the file with the current settings
    /// (and `origin`, if given), then restores them.
    fn include(
        &mut self,
        args: &[Token<'_>],
        dir: Option<&Path>,
        depth: usize,
    ) -> Result<(), Fault> {
        let (file_token, origin_token) = match args {
            [file] => (file, None),
            [file, origin] => (file, Some(origin)),
            _ => return Err("$INCLUDE takes a file name and an optional origin".into()),
        };
        let Some(dir) = dir else {
            return Err("$INCLUDE is not allowed here (no include directory)".into());
        };
        if depth >= self.opts.max_include_depth {
            let max = self.opts.max_include_depth;
            return Err(format!("$INCLUDE nested more than {max} deep").into());
        }
        let origin = match origin_token {
            Some(token) => Some(self.name_from_origin(token.text, "$INCLUDE origin")?),
            None => None,
        };
        let path = dir.join(include_file_name(file_token.text)?);
        let data = self.read_include(&path)?;
        let saved_state = self.state.clone();
        let saved_owner = self.owner.clone();
        if let Some(origin) = origin {
            self.state.origin = origin;
        }
        let sub_dir = path.parent().unwrap_or(dir).to_path_buf();
        let result = self.parse_source(&data, &path, Some(&sub_dir), depth + 1);
        self.state = saved_state;
        self.owner = saved_owner;
        result.map_err(Fault::Nested)
    }

    /// Reads an included file after checking it lies inside the include root.
    fn read_include(&mut self, path: &Path) -> Result<Vec<u8>, Fault> {
        let root = self.include_root()?;
        let canonical = fs::canonicalize(path)
            .map_err(|e| format!("cannot open $INCLUDE file `{}`: {e}", path.display()))?;
        if !canonical.starts_with(&root) {
            return Err(format!(
                "$INCLUDE file `{}` is outside the zone directory {}",
                path.display(),
                root.display()
            )
            .into());
        }
        let data = fs::read(&canonical)
            .map_err(|e| format!("cannot read $INCLUDE file `{}`: {e}", path.display()))?;
        Ok(data)
    }

    fn include_root(&mut self) -> Result<PathBuf, Fault> {
        if let Some(root) = &self.include_root {
            return Ok(root.clone());
        }
        let Some(base) = &self.include_base else {
            return Err("$INCLUDE is not allowed here (no include directory)".into());
        };
        let root = fs::canonicalize(base)
            .map_err(|e| format!("cannot use include directory `{}`: {e}", base.display()))?;
        self.include_root = Some(root.clone());
        Ok(root)
    }
}

/// The file name of `$INCLUDE`, escapes decoded.
fn include_file_name(text: &[u8]) -> Result<String, Fault> {
    let mut raw = Vec::with_capacity(text.len());
    rdata_text::decode_escapes(text, &mut raw).ok_or("bad escape in $INCLUDE file name")?;
    if raw.is_empty() {
        return Err("empty $INCLUDE file name".into());
    }
    String::from_utf8(raw).map_err(|_| "$INCLUDE file name is not UTF-8".into())
}

/// A record or `$TTL` TTL: BIND units allowed, at most 2^31 - 1.
fn record_ttl(text: &[u8]) -> Result<u32, Fault> {
    match rdata_text::parse_ttl(text) {
        Some(ttl) if ttl <= MAX_TTL => Ok(ttl),
        Some(_) => Err(format!("TTL `{}` is above 2147483647", shown(text)).into()),
        None => Err(format!("bad TTL `{}`", shown(text)).into()),
    }
}

/// A class mnemonic, without allocating (this runs for every record).
fn class_code(text: &[u8]) -> Option<u16> {
    if text.eq_ignore_ascii_case(b"IN") {
        Some(class::IN)
    } else if text.eq_ignore_ascii_case(b"CH") || text.eq_ignore_ascii_case(b"CHAOS") {
        Some(class::CH)
    } else if text.eq_ignore_ascii_case(b"HS") {
        Some(class::HS)
    } else if text.len() > 5 && text[..5].eq_ignore_ascii_case(b"CLASS") {
        rr::class_from_mnemonic(text)
    } else {
        None
    }
}

fn class_name(code: u16) -> String {
    match code {
        class::IN => "IN".to_string(),
        class::CH => "CH".to_string(),
        class::HS => "HS".to_string(),
        _ => format!("CLASS{code}"),
    }
}

/// A type mnemonic, with the common types checked first.
fn type_code(text: &[u8]) -> Option<u16> {
    let common = match text.len() {
        1 if text.eq_ignore_ascii_case(b"A") => Some(rtype::A),
        4 if text.eq_ignore_ascii_case(b"AAAA") => Some(rtype::AAAA),
        2 if text.eq_ignore_ascii_case(b"NS") => Some(rtype::NS),
        2 if text.eq_ignore_ascii_case(b"MX") => Some(rtype::MX),
        3 if text.eq_ignore_ascii_case(b"TXT") => Some(rtype::TXT),
        5 if text.eq_ignore_ascii_case(b"CNAME") => Some(rtype::CNAME),
        _ => None,
    };
    common.or_else(|| rr::rtype_from_mnemonic(text))
}

/// Token text for an error message, shortened when very long.
fn shown(text: &[u8]) -> String {
    const MAX: usize = 80;
    let mut s = String::from_utf8_lossy(&text[..text.len().min(MAX)]).into_owned();
    if text.len() > MAX {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::rdata_text::rdata_to_text;

    /// A record as the tests see it: owned, with its data printed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        owner: String,
        class: u16,
        rtype: u16,
        ttl: u32,
        data: String,
        file: PathBuf,
        line: u32,
    }

    fn options() -> MasterOptions {
        MasterOptions::new(&Name::parse("example.test.").expect("apex"))
    }

    fn collect(text: &str, include_dir: Option<&Path>) -> Result<Vec<Seen>, MasterError> {
        let mut seen = Vec::new();
        parse_bytes(
            text.as_bytes(),
            Path::new("zone.db"),
            include_dir,
            &options(),
            &mut |r| {
                seen.push(seen_of(r));
                Ok(())
            },
        )?;
        Ok(seen)
    }

    fn seen_of(r: &MasterRecord<'_>) -> Seen {
        Seen {
            owner: Name::from_wire(r.owner).expect("owner").to_string(),
            class: r.class,
            rtype: r.rtype,
            ttl: r.ttl,
            data: rdata_to_text(r.rtype, r.rdata),
            file: r.file.to_path_buf(),
            line: r.line,
        }
    }

    fn records(text: &str) -> Vec<Seen> {
        collect(text, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Each record as `owner ttl TYPE data @line`.
    fn lines(text: &str) -> Vec<String> {
        records(text)
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {} @{}",
                    s.owner,
                    s.ttl,
                    rr::rtype_name(s.rtype),
                    s.data,
                    s.line
                )
            })
            .collect()
    }

    fn error(text: &str) -> String {
        match collect(text, None) {
            Ok(seen) => panic!("parsed: {seen:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lab_zone_parses_with_every_feature_it_uses() {
        let text = include_str!("../../../lab/zones/example.test.zone");
        let seen = lines(text);
        assert_eq!(seen.len(), 19);
        assert_eq!(
            seen[0],
            "example.test. 3600 SOA ns1.example.test. hostmaster.example.test. 2026112301 7200 900 1209600 300 @4"
        );
        assert_eq!(seen[1], "example.test. 3600 NS ns1.example.test. @10");
        assert_eq!(seen[4], "example.test. 3600 TXT \"v=spf1 mx -all\" @13");
        assert_eq!(seen[6], "ns1.example.test. 3600 AAAA 2001:db8::1 @15");
        assert_eq!(seen[13], "*.apps.example.test. 3600 A 192.0.2.100 @22");
    }

    #[test]
    fn origin_directive_changes_relative_names_and_at() {
        let seen =
            lines("$TTL 60\n$ORIGIN sub\n@ A 192.0.2.1\nwww CNAME @\n$ORIGIN other.\nx NS y\n");
        assert_eq!(
            seen,
            [
                "sub.example.test. 60 A 192.0.2.1 @3",
                "www.sub.example.test. 60 CNAME sub.example.test. @4",
                "x.other. 60 NS y.other. @6",
            ]
        );
    }

    #[test]
    fn ttl_directive_takes_units_and_overrides_last_explicit_ttl() {
        let seen = lines(
            "$TTL 1w2d3h4m5s\na A 192.0.2.1\nb 30 A 192.0.2.2\nc A 192.0.2.3\n$ttl 1H\nd A 192.0.2.4\n",
        );
        assert_eq!(
            seen,
            [
                "a.example.test. 788645 A 192.0.2.1 @2",
                "b.example.test. 30 A 192.0.2.2 @3",
                "c.example.test. 788645 A 192.0.2.3 @4",
                "d.example.test. 3600 A 192.0.2.4 @6",
            ]
        );
    }

    #[test]
    fn without_ttl_directive_the_last_explicit_ttl_is_used() {
        let seen = lines("a 300 A 192.0.2.1\nb A 192.0.2.2\n");
        assert_eq!(seen[1], "b.example.test. 300 A 192.0.2.2 @2");
    }

    #[test]
    fn missing_ttl_is_an_error() {
        assert_eq!(
            error("\n\na A 192.0.2.1\n"),
            "zone.db:3: no TTL: give one on the record or set $TTL"
        );
    }

    #[test]
    fn blank_owner_repeats_the_previous_owner() {
        let seen = lines("$TTL 1\nwww A 192.0.2.1\n  AAAA ::1\n\tTXT x\n");
        assert_eq!(seen[1], "www.example.test. 1 AAAA ::1 @3");
        assert_eq!(seen[2], "www.example.test. 1 TXT \"x\" @4");
        assert_eq!(
            error(" A 192.0.2.1\n"),
            "zone.db:1: blank owner but no previous record to take it from"
        );
    }

    #[test]
    fn class_and_ttl_come_in_either_order_and_are_optional() {
        let texts = [
            "a 60 IN A 192.0.2.1",
            "a IN 60 A 192.0.2.1",
            "a in 60 a 192.0.2.1",
            "a CLASS1 1m TYPE1 192.0.2.1",
            "$TTL 60\na IN A 192.0.2.1",
            "$TTL 60\na A 192.0.2.1",
        ];
        for text in texts {
            let seen = records(text);
            assert_eq!(
                (seen[0].class, seen[0].rtype, seen[0].ttl),
                (class::IN, rtype::A, 60),
                "{text}"
            );
            assert_eq!(seen[0].data, "192.0.2.1");
        }
        assert_eq!(
            error("a 60 IN 60 A 192.0.2.1"),
            "zone.db:1: unexpected `60`: TTL given twice"
        );
        assert_eq!(
            error("a IN 60 IN A 192.0.2.1"),
            "zone.db:1: unexpected `IN`: class given twice"
        );
    }

    #[test]
    fn other_class_than_the_zone_is_an_error() {
        assert_eq!(
            error("a 60 CH A 192.0.2.1"),
            "zone.db:1: class CH does not match the zone's class IN"
        );
        assert_eq!(
            error("a 60 CLASS7 A 192.0.2.1"),
            "zone.db:1: class CLASS7 does not match the zone's class IN"
        );
    }

    #[test]
    fn parentheses_span_lines_and_hold_comments() {
        let text = "$TTL 60\n@ SOA ns1 ( ; primary\n  hostmaster ; mailbox\n  1 ; serial\n  2h 1h\n  1w 5m ) ; done\nnext A 192.0.2.1\n";
        let seen = lines(text);
        assert_eq!(
            seen,
            [
                "example.test. 60 SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 604800 300 @2",
                "next.example.test. 60 A 192.0.2.1 @7",
            ]
        );
    }

    #[test]
    fn record_line_is_where_its_first_token_is() {
        let seen = lines("$TTL 60\n\n(\nx A\n192.0.2.1 )\n");
        assert_eq!(seen, ["x.example.test. 60 A 192.0.2.1 @4"]);
    }

    #[test]
    fn unbalanced_parentheses_are_errors() {
        assert_eq!(
            error("$TTL 60\na TXT ( x\ny\n"),
            "zone.db:2: `(` is never closed"
        );
        assert_eq!(
            error("$TTL 60\na TXT x )\n"),
            "zone.db:2: `)` without a matching `(`"
        );
    }

    #[test]
    fn quoted_strings_keep_spaces_semicolons_and_escaped_quotes() {
        let seen = records("$TTL 60\na TXT \"a; b (c)\" \"say \\\"hi\\\"\" \\032x\\040\n");
        assert_eq!(seen[0].data, r#""a; b (c)" "say \"hi\"" " x(""#);
        assert_eq!(
            error("$TTL 60\na TXT \"open\nb A 192.0.2.1\n"),
            "zone.db:2: quoted string not closed on its line"
        );
    }

    #[test]
    fn escapes_in_owner_names_are_decoded_and_lowercased() {
        let seen = records("$TTL 60\nA\\066\\.C\\ d.Example. A 192.0.2.1\n");
        assert_eq!(seen[0].owner, "ab\\.c\\032d.example.");
        let mut owners = Vec::new();
        parse_bytes(
            b"$TTL 60\nWWW.Example.TEST. CNAME Target.Example.TEST.\n",
            Path::new("z"),
            None,
            &options(),
            &mut |r| {
                owners.push((r.owner.to_vec(), r.rdata.to_vec()));
                Ok(())
            },
        )
        .expect("parses");
        assert_eq!(owners[0].0, b"\x03www\x07example\x04test\x00");
        assert_eq!(owners[0].1, b"\x06Target\x07Example\x04TEST\x00");
    }

    #[test]
    fn crlf_line_endings() {
        let seen = lines("$TTL 60\r\na A 192.0.2.1 ; c\r\n  TXT \"x\"\r\n");
        assert_eq!(
            seen,
            [
                "a.example.test. 60 A 192.0.2.1 @2",
                "a.example.test. 60 TXT \"x\" @3"
            ]
        );
    }

    #[test]
    fn generic_type_and_data_syntax() {
        let seen =
            lines("$TTL 60\na TYPE65534 \\# 3 abcdef\nb TYPE1 \\# 4 C0000201\nc type16 \\# 0\n");
        assert_eq!(
            seen,
            [
                "a.example.test. 60 TYPE65534 \\# 3 ABCDEF @2",
                "b.example.test. 60 A 192.0.2.1 @3",
                "c.example.test. 60 TXT \\# 0 @4",
            ]
        );
    }

    #[test]
    fn every_required_type_reads_from_a_zone_file() {
        let text = r#"$ORIGIN example.test.
$TTL 300
@ SOA ns hostmaster 1 2 3 4 5
@ NS ns
ns A 192.0.2.1
ns AAAA 2001:db8::1
www CNAME ns
d DNAME elsewhere.
@ MX 10 mail
@ TXT "a" b
@ SPF "v=spf1 -all"
_sip._tcp SRV 0 5 5060 sip
1.2 PTR host
@ CAA 0 issue "ca.example"
@ NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
@ SSHFP 4 2 0123456789abcdef
_443._tcp TLSA 3 1 1 0123456789abcdef
s SMIMEA 3 1 1 0123456789abcdef
@ HINFO "PC" "Linux"
@ LOC 52 22 23 N 4 53 32 E -2m
@ SVCB 1 . alpn=h2
@ HTTPS 0 www
b DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
b CDS 0 0 0 00
@ DNSKEY 257 3 13 AQID BA==
@ CDNSKEY 0 3 0 AA==
@ RRSIG A 13 2 300 20300101000000 20200101000000 1 example.test. AQID
@ NSEC a A NS SOA
@ NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A
@ NSEC3PARAM 1 0 0 -
@ ZONEMD 1 1 1 0123456789abcdef01234567
"#;
        let seen = records(text);
        assert_eq!(seen.len(), 29);
        for s in &seen {
            assert!(!s.data.starts_with("\\#"), "{s:?}");
        }
        let loc = seen.iter().find(|s| s.rtype == rtype::LOC).expect("LOC");
        assert_eq!(
            loc.data,
            "52 22 23.000 N 4 53 32.000 E -2.00m 1m 10000m 10m"
        );
    }

    #[test]
    fn unknown_type_is_named_in_the_error() {
        assert_eq!(
            error("$TTL 60\na FOO bar\n"),
            "zone.db:2: unknown record type `FOO`"
        );
        assert_eq!(
            error("$TTL 60\na 60 IN\n"),
            "zone.db:2: missing record type"
        );
    }

    #[test]
    fn meta_types_are_refused() {
        for (text, name) in [
            ("OPT", "OPT"),
            ("TSIG", "TSIG"),
            ("ANY", "ANY"),
            ("AXFR", "AXFR"),
            ("TYPE41", "OPT"),
        ] {
            let message = error(&format!("$TTL 60\na {text} \\# 0\n"));
            assert_eq!(
                message,
                format!("zone.db:2: {name} is a meta type, not allowed in zone data")
            );
        }
    }

    #[test]
    fn bad_data_errors_name_file_line_and_type() {
        assert_eq!(
            error("$TTL 60\n\na A 1.2.3\n"),
            "zone.db:3: A record: bad IPv4 address `1.2.3`"
        );
        assert_eq!(
            error("$TTL 60\na DNSKEY 257 3 13 AQI=x\n"),
            "zone.db:2: DNSKEY record: bad public key `AQI=x`"
        );
        assert_eq!(
            error("$TTL 60\na TXT \"bad \\2x\"\n"),
            "zone.db:2: TXT record: bad text `bad \\2x`"
        );
    }

    #[test]
    fn bad_owner_names_are_errors() {
        assert_eq!(
            error("$TTL 60\na\\25 A 192.0.2.1\n"),
            "zone.db:2: bad owner name `a\\25`: bad escape sequence"
        );
        let long = "x".repeat(64);
        assert_eq!(
            error(&format!("$TTL 60\n{long} A 192.0.2.1\n")),
            format!("zone.db:2: bad owner name `{long}`: label longer than 63 bytes")
        );
        assert_eq!(
            error("$TTL 60\na..b A 192.0.2.1\n"),
            "zone.db:2: bad owner name `a..b`: empty label"
        );
    }

    #[test]
    fn bad_directives_are_errors() {
        assert_eq!(error("$TTL\n"), "zone.db:1: $TTL takes one TTL");
        assert_eq!(error("$TTL 1x\n"), "zone.db:1: bad TTL `1x`");
        assert_eq!(
            error("$TTL 2147483648\n"),
            "zone.db:1: TTL `2147483648` is above 2147483647"
        );
        assert_eq!(
            error("$ORIGIN a b\n"),
            "zone.db:1: $ORIGIN takes one domain name"
        );
        assert_eq!(
            error("$GENERATE 1-2 a A 1.2.3.$\n"),
            "zone.db:1: unknown directive `$GENERATE`"
        );
        assert_eq!(
            error("$INCLUDE x\n"),
            "zone.db:1: $INCLUDE is not allowed here (no include directory)"
        );
    }

    #[test]
    fn sink_errors_stop_parsing_at_the_record() {
        let mut count = 0;
        let result = parse_bytes(
            b"$TTL 1\na A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n",
            Path::new("z"),
            None,
            &options(),
            &mut |r| {
                count += 1;
                if r.owner.starts_with(b"\x01b") {
                    Err("no b here".to_string())
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(result.expect_err("fails").to_string(), "z:3: no b here");
        assert_eq!(count, 2);
    }

    /// A scratch directory, removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(name: &str) -> ScratchDir {
            let dir =
                std::env::temp_dir().join(format!("edgedns-master-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("sub")).expect("scratch dir");
            ScratchDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, text).expect("write");
            path
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn parse_path(path: &Path) -> Result<Vec<Seen>, MasterError> {
        let mut seen = Vec::new();
        parse_file(path, &options(), &mut |r| {
            seen.push(seen_of(r));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn include_reads_relative_files_with_their_origin_and_restores_state() {
        let dir = ScratchDir::new("include");
        dir.write(
            "sub/hosts.db",
            "$TTL 5\nh1 A 192.0.2.1\n  AAAA ::1\n$INCLUDE more.db\n",
        );
        dir.write("sub/more.db", "h2 A 192.0.2.2\n");
        let zone = dir.write("zone.db", "$TTL 60\nwww A 192.0.2.9\n$INCLUDE sub/hosts.db hosts\n  TXT \"back\"\nz A 192.0.2.3\n");
        let seen = parse_path(&zone).expect("parses");
        let summary: Vec<String> = seen
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}:{}",
                    s.owner,
                    s.ttl,
                    s.file.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
                    s.line
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "www.example.test. 60 zone.db:2",
                "h1.hosts.example.test. 5 hosts.db:2",
                "h1.hosts.example.test. 5 hosts.db:3",
                "h2.hosts.example.test. 5 more.db:1",
                "www.example.test. 60 zone.db:4",
                "z.example.test. 60 zone.db:5",
            ]
        );
    }

    #[test]
    fn include_escaping_the_zone_directory_is_an_error() {
        let dir = ScratchDir::new("escape");
        dir.write("outside.db", "x A 192.0.2.1\n");
        let zone = dir.write("sub/zone.db", "$TTL 60\n$INCLUDE ../outside.db\n");
        let message = parse_path(&zone).expect_err("refused").to_string();
        assert!(
            message.starts_with(&format!("{}:2: $INCLUDE file", zone.display())),
            "{message}"
        );
        assert!(
            message.contains("is outside the zone directory"),
            "{message}"
        );
        let absolute = dir.write(
            "sub/abs.db",
            &format!("$INCLUDE {}\n", dir.0.join("outside.db").display()),
        );
        let message = parse_path(&absolute).expect_err("refused").to_string();
        assert!(
            message.contains("is outside the zone directory"),
            "{message}"
        );
    }

    #[test]
    fn include_errors_carry_the_included_file_and_line() {
        let dir = ScratchDir::new("nested-error");
        let inner = dir.write("inner.db", "\n\nbad A 1.2.3\n");
        let zone = dir.write("zone.db", "$TTL 60\n$INCLUDE inner.db\n");
        let message = parse_path(&zone).expect_err("fails").to_string();
        assert_eq!(
            message,
            format!("{}:3: A record: bad IPv4 address `1.2.3`", inner.display())
        );
        let missing = dir.write("missing.db", "$INCLUDE nowhere.db\n");
        let message = parse_path(&missing).expect_err("fails").to_string();
        assert!(
            message.starts_with(&format!(
                "{}:1: cannot open $INCLUDE file",
                missing.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn include_depth_is_limited() {
        let dir = ScratchDir::new("loop");
        let zone = dir.write("zone.db", "$TTL 60\na A 192.0.2.1\n$INCLUDE zone.db\n");
        let message = parse_path(&zone).expect_err("fails").to_string();
        assert!(
            message.ends_with(":3: $INCLUDE nested more than 8 deep"),
            "{message}"
        );
    }

    #[test]
    fn missing_file_is_an_error_at_line_zero() {
        let message = parse_path(Path::new("/nonexistent/zone.db"))
            .expect_err("fails")
            .to_string();
        assert!(
            message.starts_with("/nonexistent/zone.db:0: cannot read zone file"),
            "{message}"
        );
    }

    mod properties {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// Pieces of master files, to build inputs that get past the lexer.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "$ORIGIN",
                    "$TTL",
                    "$INCLUDE",
                    "@",
                    "*",
                    "IN",
                    "CH",
                    "A",
                    "AAAA",
                    "NS",
                    "SOA",
                    "TXT",
                    "MX",
                    "SVCB",
                    "LOC",
                    "NSEC",
                    "RRSIG",
                    "TYPE65534",
                    "\\#",
                    "(",
                    ")",
                    ";",
                    "\"",
                    "\n",
                    "\r\n",
                    " ",
                    "\t",
                    "\\",
                    ".",
                    "3600",
                    "1w",
                    "192.0.2.1",
                    "::1",
                    "alpn=h2",
                    "N",
                    "AA==",
                    "-",
                ])
                .prop_map(str::to_string),
                "[a-z0-9.\\\\]{1,8}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn random_bytes_never_panic(data in vec(any::<u8>(), 0..400)) {
                let _ = parse_bytes(&data, Path::new("fuzz"), None, &options(), &mut |_| Ok(()));
            }

            #[test]
            fn random_zone_pieces_never_panic_and_records_are_valid(pieces in vec(piece(), 0..60)) {
                let text = pieces.join(" ");
                let mut result = Ok(());
                let _ = parse_bytes(text.as_bytes(), Path::new("fuzz"), None, &options(), &mut |r| {
                    if Name::from_wire(r.owner).is_err() || r.owner.iter().any(u8::is_ascii_uppercase) {
                        result = Err(format!("bad owner {:?}", r.owner));
                    }
                    Ok(())
                });
                prop_assert_eq!(result, Ok(()));
            }
        }
    }
}
