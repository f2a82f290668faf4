#!/usr/bin/env python3
# requirements (Debian): apt-get install -y bind9 bind9-utils knot knot-dnsutils nsd dnsutils python3-dnspython
#   BIND 9.18 `named`; Knot 3.2 `knotd`, `knotc`, `kdig`; NSD 4.6 `nsd`, `nsd-control`;
#   python3-dnspython (2.3) for Debian's /usr/bin/python3.  No network, no systemd: every
#   daemon is started here in the foreground of its own session, on loopback addresses only
#   (127.0.0.0/8), with its configuration in a temporary directory, and stopped by its PID.
"""End-to-end tests of edge-agent as a secondary (issue 3).

Hidden masters (Knot, BIND 9, NSD, and a Python fake master) serve `ministry.test.` with
TSIG; edge-agent follows them, and Knot/BIND follow edge-agent.  The scenarios:

  masters    the master side alone (no agent): AXFR with the key, refusal of wrong keys,
             NOTIFY to a Python listener from the master's own address, IXFR after a change
  initial    initial AXFR: SOA serial and names answered within a few seconds
  notify     a one-record change + NOTIFY arrives (by IXFR where the master can) within ~2 s
  jump       a serial jump (+1000, then across 2^32) with a master restart
  failover   the first master down, then hung: the agent refreshes from the second
  expire     all masters down: served until expire, then SERVFAIL; recovers; also when the
             node was off across the expire deadline
  tsig       wrong key name, wrong secret (real masters) and a skewed clock (fake master)
  unlisted   a NOTIFY from an unlisted address (127.0.0.99) is refused, no transfer
  downstream Knot and BIND as secondaries of edge-agent: AXFR then IXFR, identical zones
  crash      SIGKILL at random moments during >= 50 transfers: complete versions only
  malformed  a fake master sends broken transfers: rejected, old version kept

    python3 tests/secondary/run.py [--agent PATH|fake] [--masters knot,bind,nsd]
                                   [--only NAME[,NAME]] [--keep] [--seed N]

The last line printed is `secondary: N passed, M failed`; the exit status is non-zero if
anything failed.  `--agent fake` runs tests/secondary/fake_agent.py (Knot as a secondary,
configured from the same TOML) in edge-agent's place: this checks the harness itself.
"""

import os
import sys

try:
    import dns.name  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.stderr.write("run.py: dnspython missing: apt-get install -y python3-dnspython\n")
    sys.exit(2)

import argparse
import base64
import hashlib
import hmac
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import traceback

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

ZONE = "ministry.test."
ZNAME = dns.name.from_text(ZONE)
KEY_NAME = "xfr-key."
KEY_SECRET = base64.b64encode(hashlib.sha256(b"edgedns secondary test key").digest()).decode()
WRONG_SECRET = base64.b64encode(hashlib.sha256(b"not the right secret").digest()).decode()
KEY = dns.tsig.Key(KEY_NAME, KEY_SECRET, "hmac-sha256")
KEYRING = {dns.name.from_text(KEY_NAME): KEY}

AGENT_IP = "127.0.0.1"
MASTER_IPS = ["127.0.0.2", "127.0.0.3"]
FAKE_MASTER_IP = "127.0.0.4"
KNOT_SECONDARY_IP = "127.0.0.5"
BIND_SECONDARY_IP = "127.0.0.6"
UNLISTED_IP = "127.0.0.99"

# SOA timers (refresh, retry, expire)
SLOW = (3600, 600, 86400)   # only NOTIFY can explain a prompt refresh
FAST = (2, 1, 60)           # refresh polling every 2 s
EXPIRE = (2, 1, 12)         # expire scenario: 12 s after the last refresh
NAMES = 200                 # host names in the test zone (plus apex, ns1, ns2, mail, _sip._udp)

Q_TIMEOUT = 0.5
THREAD_LIFETIME = 600.0     # the Python listeners / fake master stop by themselves after this
T = dns.rdatatype

# ---------------------------------------------------------------------------------------
# small utilities

def log(*a):
    print(*a, flush=True)


class Fail(Exception):
    """A scenario's check failed: the message says what was expected and what was seen."""


def port_free(ip, port):
    """Whether UDP and TCP ip:port can be bound (TCP with SO_REUSEADDR, as servers do)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def wait_until(pred, timeout, interval=0.1):
    """Calls pred() until it returns a truthy value or `timeout` seconds pass (bounded).
    Returns the last value."""
    deadline = time.monotonic() + timeout
    val = None
    for _ in range(int(timeout / max(interval, 0.01)) + 2):
        val = pred()
        if val or time.monotonic() >= deadline:
            return val
        time.sleep(interval)
    return val


def free_port(ip):
    """A port free for both UDP and TCP on `ip` (bounded attempts)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((ip, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((ip, port))
        except OSError:
            t.close()
            u.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError(f"no free port on {ip}")


def tail(path, n=25, prefix="      | "):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(prefix + l for l in lines[-n:]) or prefix + "(empty)"
    except OSError:
        return prefix + "(no log)"


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# the test zone: one deterministic record set per (serial, stamp, timers, extra)


class Version:
    """A version of ministry.test.  Every name carries TXT "stamp=<stamp>" (the crash test
    sets stamp = serial, so each answer tells which version it came from)."""

    def __init__(self, serial, stamp="base", timers=SLOW, extra=(), drop=(), names=NAMES):
        self.serial = serial % 2**32
        self.stamp = str(stamp)
        self.timers = timers
        self.extra = tuple(extra)   # (relative name, type, rdata text) added
        self.drop = tuple(drop)     # (relative name, type) removed from the base records
        self.names = names

    def with_(self, **kw):
        d = dict(serial=self.serial, stamp=self.stamp, timers=self.timers, extra=self.extra, drop=self.drop,
                 names=self.names)
        d.update(kw)
        return Version(**d)

    def soa_rdata(self):
        r, y, e = self.timers
        return f"ns1.{ZONE} hostmaster.{ZONE} {self.serial} {r} {y} {e} 60"

    def records(self):
        """[(relative owner, ttl, type, rdata text)], SOA first."""
        st = f'"stamp={self.stamp}"'
        out = [("@", 300, "SOA", self.soa_rdata()),
               ("@", 300, "NS", f"ns1.{ZONE}"), ("@", 300, "NS", f"ns2.{ZONE}"),
               ("@", 300, "MX", f"10 mail.{ZONE}"), ("@", 300, "CAA", '0 issue "ca.test"'),
               ("@", 300, "TXT", st),
               ("ns1", 300, "A", "192.0.2.1"), ("ns1", 300, "TXT", st),
               ("ns2", 300, "A", "192.0.2.2"), ("ns2", 300, "AAAA", "2001:db8::2"), ("ns2", 300, "TXT", st),
               ("mail", 300, "A", "192.0.2.3"), ("mail", 300, "TXT", st),
               ("_sip._udp", 300, "SRV", f"10 5 5060 mail.{ZONE}"), ("_sip._udp", 300, "TXT", st)]
        for i in range(self.names):
            h = f"h{i:03d}"
            out.append((h, 300, "A", f"198.51.100.{i % 250 + 1}"))
            if i % 3 == 0:
                out.append((h, 300, "AAAA", f"2001:db8:1::{i + 1:x}"))
            out.append((h, 300, "TXT", f'{st} "host={h}"'))
        if self.drop:
            out = [r for r in out if (r[0], r[2]) not in self.drop]
        for name, typ, rdata in self.extra:
            out.append((name, 300, typ, rdata))
        return out

    def keys_ordered(self):
        """The normalised records, SOA first (the order of a transfer)."""
        out, seen = [], set()
        for name, ttl, typ, rdata in self.records():
            owner = ZONE if name == "@" else f"{name}.{ZONE}"
            k = norm_record(owner, ttl, typ, rdata)
            if k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def expect(self, owner, typ):
        """The normalised records at owner/typ."""
        o = dns.name.from_text(owner).to_text().lower()
        return {k for k in self.rrset_keys() if k.split(None, 3)[0] == o and k.split(None, 3)[2] == typ}

    def owners(self):
        """Every owner name (absolute text) that has the stamp TXT."""
        return [ZONE] + [f"{n}.{ZONE}" for n in ("ns1", "ns2", "mail", "_sip._udp")] + \
               [f"h{i:03d}.{ZONE}" for i in range(self.names)]

    def text(self):
        lines = [f"$ORIGIN {ZONE}", "$TTL 300"]
        for name, ttl, typ, rdata in self.records():
            lines.append(f"{name}\t{ttl}\tIN\t{typ}\t{rdata}")
        return "\n".join(lines) + "\n"

    def rrset_keys(self):
        """The version as a set of normalised record strings (see norm_record)."""
        out = set()
        for name, ttl, typ, rdata in self.records():
            owner = ZONE if name == "@" else f"{name}.{ZONE}"
            out.add(norm_record(owner, ttl, typ, rdata))
        return out


def norm_record(owner, ttl, typ, rdata_text):
    """One record as 'owner ttl TYPE rdata' with a lower-case owner and dnspython's
    canonical rdata text (absolute names)."""
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(typ), rdata_text, origin=ZNAME,
                             relativize=False)
    return f"{dns.name.from_text(owner).to_text().lower()} {int(ttl)} {typ.upper()} {rd.to_text(origin=dns.name.root, relativize=False)}"


def norm_rrset(rrset):
    out = set()
    for rd in rrset:
        out.add(f"{rrset.name.to_text().lower()} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} "
                f"{rd.to_text(origin=dns.name.root, relativize=False)}")
    return out


# ---------------------------------------------------------------------------------------
# DNS client helpers (the harness as a resolver / transfer client)


def query(ip, port, qname, qtype, tcp=False, timeout=Q_TIMEOUT, tries=2, key=False, source=None):
    """One query; returns a dns.message.Message or None (silence, refused connection)."""
    q = dns.message.make_query(qname, qtype)
    q.flags &= ~dns.flags.RD
    if key:
        q.use_tsig(KEYRING, keyname=KEY_NAME)
    for _ in range(tries):
        try:
            if tcp:
                return dns.query.tcp(q, ip, port=port, timeout=timeout, source=source)
            return dns.query.udp(q, ip, port=port, timeout=timeout, source=source, ignore_unexpected=True)
        except (dns.exception.Timeout, OSError, EOFError, dns.exception.DNSException):
            continue
    return None


def soa_serial(ip, port, tcp=False):
    """(rcode text, serial or None) of the zone's SOA at ip:port; ("silent", None) if no answer."""
    r = query(ip, port, ZONE, T.SOA, tcp=tcp)
    if r is None:
        return "silent", None
    rc = dns.rcode.to_text(r.rcode())
    for rr in r.answer:
        if rr.rdtype == T.SOA and rr.name == ZNAME:
            return rc, rr[0].serial
    return rc, None


def txt_of(ip, port, name):
    """The TXT strings at name (list of str), or an rcode text / 'silent'."""
    r = query(ip, port, name, T.TXT)
    if r is None:
        return "silent"
    if r.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(r.rcode())
    out = []
    for rr in r.answer:
        if rr.rdtype == T.TXT:
            for rd in rr:
                out.append(b" ".join(rd.strings).decode("latin-1"))
    return out


def stamp_of(strings):
    """'5' from ['stamp=5 host=h001'] ; None if absent."""
    if not isinstance(strings, list):
        return None
    for s in strings:
        m = re.search(r"stamp=(\S+)", s)
        if m:
            return m.group(1)
    return None


def sweep(ip, port, version, deadline_s=20.0):
    """Asks SOA and the TXT of every owner of `version`; returns (soa serial or rcode,
    {stamp: [names]}, [problems]).  Bounded by deadline_s."""
    t0 = time.monotonic()
    rc, serial = soa_serial(ip, port)
    stamps, problems = {}, []
    for name in version.owners():
        if time.monotonic() - t0 > deadline_s:
            problems.append(f"sweep stopped after {deadline_s:.0f} s")
            break
        t = txt_of(ip, port, name)
        st = stamp_of(t)
        if st is None:
            problems.append(f"{name} TXT: {t if not isinstance(t, list) else 'no stamp in ' + repr(t)}")
            stamps.setdefault("(none)", []).append(name)
        else:
            stamps.setdefault(st, []).append(name)
    rc2, serial2 = soa_serial(ip, port)
    return (serial if serial is not None else rc), (serial2 if serial2 is not None else rc2), stamps, problems


def kdig_axfr(ip, port, key=True, timeout=5):
    """`kdig AXFR` of the zone: (set of normalised records without TSIG, error text or None)."""
    argv = ["kdig", "-p", str(port), f"@{ip}", ZONE, "AXFR", "+tcp", f"+time={timeout}", "+retry=0"]
    if key:
        argv += ["-y", f"hmac-sha256:{KEY_NAME}:{KEY_SECRET}"]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return None, "kdig timed out"
    recs, err = set(), None
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith(";"):
            if "failed" in line.lower() or "error" in line.lower() or "refused" in line.lower() \
                    or "notauth" in line.lower():
                err = (err + "; " if err else "") + line.strip("; ")
            continue
        parts = line.split(None, 4)
        if len(parts) < 5 or parts[3] in ("TSIG",):
            continue
        try:
            recs.add(norm_record(parts[0], parts[1], parts[3], parts[4]))
        except Exception as e:  # noqa: BLE001  (unparsable line: report it)
            err = (err + "; " if err else "") + f"unparsable {line!r}: {e}"
    if p.returncode != 0 and err is None:
        err = f"kdig exit {p.returncode}: {p.stderr.strip()[:300]}"
    if not recs and err is None:
        err = "empty transfer: " + (p.stdout.strip()[-300:] or p.stderr.strip()[:300])
    return recs, err


def xfr_messages(ip, port, rdtype="AXFR", serial=None, key=True, keyname=KEY_NAME, secret=KEY_SECRET,
                 timeout=5.0):
    """AXFR/IXFR with dnspython: (list of response messages, error text or None).
    Every message's TSIG is verified by dnspython."""
    kr = {dns.name.from_text(keyname): dns.tsig.Key(keyname, secret, "hmac-sha256")}
    q = dns.message.make_query(ZONE, rdtype)
    if rdtype == "IXFR":
        soa = dns.rrset.from_text(ZONE, 0, "IN", "SOA", f"ns1.{ZONE} hostmaster.{ZONE} {serial} 0 0 0 0")
        q.authority.append(soa)
    if key:
        q.use_tsig(kr, keyname=keyname)
    msgs = []
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        wire = q.to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        ctx, mac, soa_count, first_serial = None, q.mac if key else b"", 0, None
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            if time.monotonic() > deadline:
                return msgs, "transfer timed out"
            hdr = _recv_exact(s, 2)
            if hdr is None:
                return msgs, "connection closed before the closing SOA"
            data = _recv_exact(s, struct.unpack("!H", hdr)[0])
            if data is None:
                return msgs, "connection closed inside a message"
            try:
                # as dns.query.xfr does: the request's MAC, the running context, multi=True
                m = dns.message.from_wire(data, keyring=kr if key else None, request_mac=mac,
                                          xfr=True, origin=None, tsig_ctx=ctx, multi=True)
            except Exception as e:  # noqa: BLE001
                return msgs, f"message {len(msgs) + 1}: {type(e).__name__}: {e}"
            ctx = m.tsig_ctx if key else None
            msgs.append(m)
            if m.rcode() != dns.rcode.NOERROR:
                return msgs, f"rcode {dns.rcode.to_text(m.rcode())}"
            for rr in m.answer:
                if rr.rdtype == T.SOA:
                    for rd in rr:
                        soa_count += 1
                        if first_serial is None:
                            first_serial = rd.serial
                            if rdtype == "IXFR" and serial is not None and rd.serial == serial:
                                return msgs, None  # up to date: one SOA
                        elif rd.serial == first_serial and (rdtype == "AXFR" or soa_count >= 2):
                            # AXFR: second SOA closes.  IXFR: the first SOA equal to the
                            # opening one after it (AXFR-style or incremental) closes.
                            if rdtype == "AXFR" or _ixfr_closed(msgs, first_serial):
                                return msgs, None
        return msgs, "too many messages"
    except (OSError, socket.timeout) as e:
        return msgs, f"{type(e).__name__}: {e}"
    finally:
        s.close()


def _ixfr_closed(msgs, first_serial):
    """True if the records received so far end with the closing SOA of an IXFR."""
    rrs = ixfr_records(msgs)
    if len(rrs) < 2:
        return False
    last = rrs[-1]
    if last[2] != "SOA" or last[4] != first_serial:
        return False
    if len(rrs) >= 2 and rrs[1][2] != "SOA":
        return True  # AXFR-style: SOA, records..., SOA
    # incremental: SOA(new) [SOA(old) dels SOA(mid) adds]* SOA(new); closed when the final
    # SOA(new) is the end of an add section: count SOA records after the first.
    soas = [r for r in rrs[1:] if r[2] == "SOA"]
    return len(soas) % 2 == 1


def ixfr_records(msgs):
    """Flattens transfer messages to [(owner, ttl, type, rdata text, serial-if-SOA)] in order."""
    out = []
    for m in msgs:
        for rr in m.answer:
            for rd in rr:
                out.append((rr.name.to_text().lower(), rr.ttl, dns.rdatatype.to_text(rr.rdtype),
                            rd.to_text(origin=dns.name.root, relativize=False),
                            rd.serial if rr.rdtype == T.SOA else None))
    return out


def apply_ixfr(base_keys, msgs):
    """Applies an IXFR response to `base_keys` (a set of normalised records).  Returns
    (resulting set, kind 'incremental'|'axfr-style'|'up-to-date', error or None)."""
    rrs = ixfr_records(msgs)
    if not rrs or rrs[0][2] != "SOA":
        return None, None, "IXFR does not start with a SOA"
    key = lambda r: f"{r[0]} {r[1]} {r[2]} {r[3]}"  # noqa: E731
    if len(rrs) == 1:
        return set(base_keys), "up-to-date", None
    if rrs[1][2] != "SOA":
        body = rrs[1:-1]
        if rrs[-1][2] != "SOA" or rrs[-1][4] != rrs[0][4]:
            return None, "axfr-style", "AXFR-style IXFR does not end with the opening SOA"
        return {key(rrs[0])} | {key(r) for r in body}, "axfr-style", None
    cur = set(base_keys)
    i, n = 1, len(rrs)
    for _ in range(n):
        if i >= n - 1:
            break
        old = rrs[i]
        if old[2] != "SOA":
            return None, "incremental", f"expected a SOA starting a deletion section at record {i}"
        cur_soa = [k for k in cur if k.split()[2] == "SOA"]
        if key(old) not in cur:
            return None, "incremental", f"deletion section starts with {key(old)} but the base has {cur_soa}"
        cur.discard(key(old))
        i += 1
        while i < n and rrs[i][2] != "SOA":
            if key(rrs[i]) not in cur:
                return None, "incremental", f"deletes a record that is not there: {key(rrs[i])}"
            cur.discard(key(rrs[i]))
            i += 1
        if i >= n:
            return None, "incremental", "no SOA ends the deletion section"
        cur.add(key(rrs[i]))
        i += 1
        while i < n and rrs[i][2] != "SOA":
            cur.add(key(rrs[i]))
            i += 1
    if i != n - 1 or rrs[-1][4] != rrs[0][4]:
        return None, "incremental", "IXFR does not end with the new SOA"
    return cur, "incremental", None


def diff_text(want, got, n=6):
    missing = sorted(want - got)
    extra = sorted(got - want)
    out = []
    if missing:
        out.append(f"{len(missing)} missing, e.g. " + "; ".join(missing[:n]))
    if extra:
        out.append(f"{len(extra)} unexpected, e.g. " + "; ".join(extra[:n]))
    return " / ".join(out) or "identical"


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def send_notify(target, source_ip, serial=None, key=True, keyname=KEY_NAME, secret=KEY_SECRET, timeout=1.0):
    """Sends a NOTIFY for the zone from source_ip (ephemeral port) to target (ip, port).
    Returns the response rcode text, or 'silent'."""
    q = dns.message.make_query(ZONE, T.SOA)
    q.flags = dns.flags.AA              # (assigning flags resets the opcode: set it after)
    q.set_opcode(dns.opcode.NOTIFY)
    if serial is not None:
        q.answer.append(dns.rrset.from_text(ZONE, 300, "IN", "SOA",
                                            f"ns1.{ZONE} hostmaster.{ZONE} {serial} 1 1 1 1"))
    if key:
        q.use_tsig({dns.name.from_text(keyname): dns.tsig.Key(keyname, secret, "hmac-sha256")}, keyname=keyname)
    for _ in range(2):
        try:
            r = dns.query.udp(q, target[0], port=target[1], timeout=timeout, source=source_ip,
                              ignore_unexpected=True)
            return dns.rcode.to_text(r.rcode())
        except dns.tsig.PeerError as e:  # a TSIG error answer (BADKEY/BADSIG...) is an answer
            return f"TSIG error ({type(e).__name__})"
        except dns.exception.Timeout:
            continue
        except dns.exception.DNSException as e:
            return f"unparsable answer ({type(e).__name__}: {e})"
    return "silent"


class NotifyListener:
    """Listens on UDP and TCP ip:port, records each NOTIFY as (source ip, transport,
    'signed'|'unsigned'|error, serial) and acknowledges it.  Used by the master self-check."""

    def __init__(self, ip="127.0.0.1", port=None):
        self.ip, self.port = ip, port or free_port(ip)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.ip, self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.ip, self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.seen = []
        self.stop_flag = False
        self.until = time.monotonic() + THREAD_LIFETIME
        self.threads = [threading.Thread(target=self._run_udp, daemon=True),
                        threading.Thread(target=self._run_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def _handle(self, data, src, transport):
        """Returns the response wire, or None."""
        try:
            m = dns.message.from_wire(data, keyring=KEYRING)
            signed = "signed" if m.had_tsig else "unsigned"
        except dns.message.UnknownTSIGKey:
            self.seen.append((src[0], transport, "unknown key", None))
            return None
        except Exception as e:  # noqa: BLE001
            self.seen.append((src[0], transport, f"unparsable/bad TSIG: {type(e).__name__}", None))
            return None
        if m.opcode() != dns.opcode.NOTIFY:
            return None
        serial = None
        for rr in m.answer:
            if rr.rdtype == T.SOA:
                serial = rr[0].serial
        self.seen.append((src[0], transport, signed, serial))
        try:
            return dns.message.make_response(m).to_wire()
        except Exception:  # noqa: BLE001
            return None

    def _run_udp(self):
        while not self.stop_flag and time.monotonic() < self.until:
            try:
                data, src = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            r = self._handle(data, src, "udp")
            if r:
                try:
                    self.udp.sendto(r, src)
                except OSError:
                    pass

    def _run_tcp(self):
        while not self.stop_flag and time.monotonic() < self.until:
            try:
                c, src = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(1.0)
            try:
                for _ in range(10):  # a few messages per connection at most
                    hdr = _recv_exact(c, 2)
                    if hdr is None:
                        break
                    data = _recv_exact(c, struct.unpack("!H", hdr)[0])
                    if data is None:
                        break
                    r = self._handle(data, src, "tcp")
                    if r:
                        c.sendall(struct.pack("!H", len(r)) + r)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


# ---------------------------------------------------------------------------------------
# daemons: started in their own session, stopped by the PID we started


class Daemon:
    def __init__(self, name, argv, workdir, extra_logs=()):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.proc = None
        self.logpath = os.path.join(workdir, name + ".log")
        self.extra_logs = list(extra_logs)
        self.logf = None

    def start(self):
        if self.alive():
            return
        self.logf = open(self.logpath, "ab")
        self.logf.write(f"---- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
        self.logf.flush()
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return read_text(self.logpath) + "".join(read_text(p) for p in self.extra_logs)

    def log_tail(self, n=25):
        out = tail(self.logpath, n)
        for p in self.extra_logs:
            if os.path.exists(p):
                out += f"\n      ({os.path.basename(p)})\n" + tail(p, n)
        return out

    def signal_group(self, sig):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)   # the session we created: the daemon and its children
        except (ProcessLookupError, PermissionError):
            pass

    def pause(self):
        self.signal_group(signal.SIGSTOP)

    def resume(self):
        self.signal_group(signal.SIGCONT)

    def kill9(self):
        if self.proc is None:
            return
        self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._close_log()

    def stop(self):
        if self.proc is None:
            return
        self.resume()  # a paused daemon cannot handle SIGTERM
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # children left in the session (NSD's server/xfrd processes), if any
        self.signal_group(signal.SIGKILL)
        self._close_log()

    def _close_log(self):
        if self.logf:
            self.logf.close()
            self.logf = None


class Lab:
    """Everything one scenario starts; stopped in reverse order at the end."""

    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.daemons = []
        self.closers = []

    def sub(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        return d

    def add(self, d):
        self.daemons.append(d)
        return d

    def close(self):
        for c in reversed(self.closers):
            try:
                c()
            except Exception:  # noqa: BLE001
                pass
        for d in reversed(self.daemons):
            try:
                d.stop()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------
# hidden masters


class Master:
    """A real master serving ZONE with TSIG on ip:port.  notify: [(ip, port)] sent NOTIFY,
    signed with the key, from the master's own address."""

    kind = "?"
    ixfr = True            # serves real (incremental) IXFR after a reload
    only_ip = None         # BIND binds only to addresses configured on an interface

    def __init__(self, lab, ip, notify=(), label=None):
        ip = self.only_ip or ip
        self.ip, self.port = ip, free_port(ip)
        self.notify = list(notify)
        self.label = label or f"{self.kind}@{ip}:{self.port}"
        self.dir = lab.sub(self.label.replace("@", "-").replace(":", "-"))
        self.zonefile = os.path.join(self.dir, "ministry.test.zone")
        self.version = None
        self.mtime = 0
        self.daemon = lab.add(self.make_daemon())

    @property
    def addr(self):
        return (self.ip, self.port)

    def write_zone(self, version):
        """Writes the zone file with an mtime strictly later than the previous one (masters
        decide whether to reload by mtime, some with a 1 s granularity)."""
        self.version = version
        tmp = self.zonefile + ".tmp"
        with open(tmp, "w") as f:
            f.write(version.text())
        os.replace(tmp, self.zonefile)
        self.mtime = max(int(time.time()), self.mtime + 1)
        os.utime(self.zonefile, (self.mtime, self.mtime))

    def start(self, version=None, wait=True):
        if version is not None:
            self.write_zone(version)
        if not self.daemon.alive():
            # A stopped master's processes (NSD forks) may hold the port for
            # a moment after the kill: wait for it (bounded) before restarting.
            wait_until(lambda: port_free(self.ip, self.port), 5, 0.05)
        self.daemon.start()
        if wait:
            self.wait_serial(self.version.serial, 15)

    def wait_serial(self, serial, timeout=10):
        got = wait_until(lambda: soa_serial(self.ip, self.port)[1] == serial, timeout, 0.1)
        if not got:
            st = "running" if self.daemon.alive() else f"exited with status {self.daemon.proc.returncode}"
            raise Fail(f"{self.label} ({st}) does not serve serial {serial} (answers {soa_serial(self.ip, self.port)}); "
                       f"log:\n{self.daemon.log_tail()}")

    def publish(self, version, wait=True):
        """Changes the zone: writes the file and makes the running master load it (it then
        sends NOTIFY).  If the master is down, only writes the file."""
        self.write_zone(version)
        if self.daemon.alive():
            self.reload()
            if wait:
                self.wait_serial(version.serial, 10)

    def restart(self, version=None):
        self.daemon.stop()
        if version is not None:
            self.write_zone(version)
        self.start()

    def stop(self):
        self.daemon.stop()

    def log_text(self):
        return self.daemon.log_text()

    # overridden
    def make_daemon(self):
        raise NotImplementedError

    def reload(self):
        raise NotImplementedError

    def notify_now(self):
        """Asks the master to send NOTIFY now (False if it cannot)."""
        return False

    # log patterns (regular expressions over the master's log)
    re_ixfr_out = None      # an IXFR served as incremental
    re_xfr_out = None       # any transfer served
    re_tsig_fail = None     # a request refused for its TSIG


def _ctl(argv, what, timeout=10):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"{what}: `{' '.join(argv)}` timed out")
    if p.returncode != 0:
        raise Fail(f"{what}: `{' '.join(argv)}` exit {p.returncode}: {(p.stdout + p.stderr).strip()[:400]}")
    return p.stdout


class KnotMaster(Master):
    kind = "knot"
    re_ixfr_out = r"IXFR, outgoing, remote 127\.0\.0\.1@\d+, started, serial \d+ -> \d+"
    re_xfr_out = r"[AI]XFR, outgoing, remote 127\.0\.0\.1@\d+"
    re_tsig_fail = r"ACL, denied|TSIG, key .*verification failed"

    def make_daemon(self):
        d = self.dir
        self.conf = os.path.join(d, "knot.conf")
        self.sock = os.path.join(d, "knot.sock")
        remotes, ids = "", []
        for i, (ip, port) in enumerate(self.notify):
            remotes += (f"  - id: notify{i}\n    address: {ip}@{port}\n    key: {KEY_NAME}\n"
                        f"    via: {self.ip}\n")
            ids.append(f"notify{i}")
        with open(self.conf, "w") as f:
            f.write(f"""server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: {self.ip}@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{self.sock}"
database:
    storage: "{d}"
log:
  - target: stderr
    any: debug          # ACL denials and TSIG failures are logged at debug only
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {KEY_SECRET}
""" + (f"remote:\n{remotes}" if remotes else "") + f"""acl:
  - id: xfr
    address: 127.0.0.0/8
    key: {KEY_NAME}
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: all
    semantic-checks: on
zone:
  - domain: {ZONE}
    file: "{self.zonefile}"
    acl: [xfr]
""" + (f"    notify: [{', '.join(ids)}]\n" if ids else ""))
        return Daemon("knotd", ["knotd", "-c", self.conf], d)

    def reload(self):
        _ctl(["knotc", "-c", self.conf, "-s", self.sock, "-t", "5", "zone-reload", ZONE], f"{self.label} reload")

    def notify_now(self):
        try:
            _ctl(["knotc", "-c", self.conf, "-s", self.sock, "-t", "5", "zone-notify", ZONE], f"{self.label} notify")
            return True
        except Fail:
            return False


class BindMaster(Master):
    kind = "bind"
    # named listens only on addresses present on an interface: lo has 127.0.0.1/8, so
    # `listen-on { 127.0.0.2; }` binds nothing (silently).  BIND runs on 127.0.0.1.
    only_ip = "127.0.0.1"
    re_ixfr_out = r"127\.0\.0\.1#\d+.*: transfer of 'ministry\.test/IN': IXFR started"
    re_xfr_out = r"127\.0\.0\.1#\d+.*transfer of 'ministry\.test/IN': [AI]XFR"
    re_tsig_fail = r"request has invalid signature|tsig verify failure|zone transfer 'ministry\.test/[AI]XFR/IN' denied"

    def make_daemon(self):
        d = self.dir
        self.conf = os.path.join(d, "named.conf")
        also = "".join(f"{ip} port {port} key \"{KEY_NAME}\"; " for ip, port in self.notify)
        with open(self.conf, "w") as f:
            f.write(f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ {self.ip}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify {"explicit" if self.notify else "no"};
    notify-source {self.ip};
    notify-delay 0;
    {"also-notify { " + also + "};" if self.notify else ""}
    ixfr-from-differences yes;
    allow-transfer {{ key "{KEY_NAME}"; }};
    max-journal-size unlimited;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{KEY_SECRET}"; }};
zone "{ZONE}" {{ type primary; file "{self.zonefile}"; }};
""")
        # -g: foreground, log to stderr; -n 1: one worker thread
        return Daemon("named", ["named", "-g", "-n", "1", "-c", self.conf], d)

    def write_zone(self, version):
        # named stopped + zone file edited + old journal = "journal rollforward failed:
        # journal out of sync with zone" and the zone is not loaded.  Editing a stopped
        # primary goes with dropping its journal (what `rndc sync -clean` would leave).
        if not self.daemon.alive():
            try:
                os.unlink(self.zonefile + ".jnl")
            except FileNotFoundError:
                pass
        super().write_zone(version)

    def reload(self):
        # SIGHUP re-reads named.conf and every zone file whose mtime changed
        # (no rndc channel: no control port to secure)
        os.kill(self.daemon.proc.pid, signal.SIGHUP)


class NsdMaster(Master):
    kind = "nsd"
    re_ixfr_out = r"(?i)ixfr for ministry\.test\..*127\.0\.0\.1"
    re_xfr_out = r"(?i)[ai]xfr for ministry\.test\..*127\.0\.0\.1"
    re_tsig_fail = r"bad tsig|refused, no acl matches"

    def make_daemon(self):
        d = self.dir
        self.conf = os.path.join(d, "nsd.conf")
        self.ctl = os.path.join(d, "nsd.ctl")
        notify = "".join(f"    notify: {ip}@{port} {KEY_NAME}\n" for ip, port in self.notify)
        with open(self.conf, "w") as f:
            f.write(f"""server:
    ip-address: {self.ip}@{self.port}
    port: {self.port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd-file.log"
    verbosity: 2
    rrl-ratelimit: 0
    tcp-count: 50
    reuseport: no
    xfrd-reload-timeout: 0
remote-control:
    control-enable: yes
    control-interface: "{self.ctl}"
key:
    name: "{KEY_NAME}"
    algorithm: hmac-sha256
    secret: "{KEY_SECRET}"
zone:
    name: "{ZONE}"
    zonefile: "{self.zonefile}"
    provide-xfr: 127.0.0.0/8 {KEY_NAME}
    store-ixfr: yes
    create-ixfr: yes
    outgoing-interface: {self.ip}
{notify}""")
        return Daemon("nsd", ["nsd", "-d", "-c", self.conf], d, extra_logs=[os.path.join(d, "nsd-file.log")])

    def reload(self):
        _ctl(["nsd-control", "-c", self.conf, "reload", ZONE], f"{self.label} reload")

    def notify_now(self):
        try:
            _ctl(["nsd-control", "-c", self.conf, "notify", ZONE], f"{self.label} notify")
            return True
        except Fail:
            return False


MASTER_KINDS = {"knot": KnotMaster, "bind": BindMaster, "nsd": NsdMaster}


def make_master(lab, kind, index, notify=()):
    """The index-th master of a kind (index 0 on 127.0.0.2, 1 on 127.0.0.3; BIND on 127.0.0.1)."""
    return MASTER_KINDS[kind](lab, MASTER_IPS[index], notify=notify)


# ---------------------------------------------------------------------------------------
# edge-agent (or the fake agent) under test


class AgentUnavailable(Fail):
    pass


_reported_start_failures = set()


class Agent:
    """edge-agent with the configuration contract of issue 3, on 127.0.0.1:port."""

    def __init__(self, lab, ctx, masters, port=None, name="agent", keys=None, master_key=KEY_NAME,
                 notify=(), notify_from=(), allow_transfer=(("127.0.0.0/8", KEY_NAME),)):
        self.ctx = ctx
        self.port = port or free_port(AGENT_IP)
        self.ip = AGENT_IP
        self.dir = lab.sub(name)
        self.conf = os.path.join(self.dir, "edge-agent.toml")
        self.store = os.path.join(self.dir, "store")
        keys = keys if keys is not None else [(KEY_NAME, KEY_SECRET)]
        ms = ", ".join(f'{{ address = "{m[0]}:{m[1]}", tsig = "{master_key}" }}' for m in masters)
        at = ", ".join(f'{{ address = "{a}", tsig = "{k}" }}' for a, k in allow_transfer)
        text = f"""# written by tests/secondary/run.py
[server]
listen = ["{AGENT_IP}:{self.port}"]
workers = 1

[store]
path = "{self.store}"
"""
        for kn, ks in keys:
            text += f"""
[[tsig]]
name = "{kn}"
algorithm = "hmac-sha256"
secret = "{ks}"
"""
        text += f"""
[[zone]]
name = "{ZONE}"
masters = [ {ms} ]
notify_from = [ {", ".join(f'"{a}"' for a in notify_from)} ]
allow_transfer = [ {at} ]
notify = [ {", ".join(f'"{ip}:{port}"' for ip, port in notify)} ]
"""
        with open(self.conf, "w") as f:
            f.write(text)
        self.daemon = lab.add(Daemon(name, ctx.agent_argv + ["--config", self.conf], self.dir))
        self.masters = masters
        self.lab = lab

    @property
    def addr(self):
        return (self.ip, self.port)

    def start(self, timeout=10):
        """Starts the agent and waits until it answers something (any rcode) on UDP."""
        self.daemon.start()
        up = wait_until(lambda: (not self.daemon.alive()) or soa_serial(self.ip, self.port)[0] != "silent",
                        timeout, 0.05)
        if not self.daemon.alive():
            msg = (f"edge-agent exited at start with status {self.daemon.proc.returncode} "
                   f"({' '.join(self.daemon.argv)})")
            key = (self.daemon.proc.returncode, read_text(self.daemon.logpath).splitlines()[-1:].__repr__())
            if key in _reported_start_failures:
                raise AgentUnavailable(msg + " (same log as above)")
            _reported_start_failures.add(key)
            raise AgentUnavailable(msg + "; config:\n" + "\n".join("      | " + l for l in read_text(self.conf).splitlines())
                                   + "\n    log:\n" + self.daemon.log_tail())
        if not up:
            raise Fail(f"edge-agent is running but does not answer on {self.ip}:{self.port} within {timeout} s; log:\n"
                       + self.daemon.log_tail())

    def stop(self):
        self.daemon.stop()

    def kill9(self):
        self.daemon.kill9()

    def serial(self):
        return soa_serial(self.ip, self.port)

    def zones(self):
        """`edge-agent zones --config FILE` output (format not fixed: shown in failures)."""
        try:
            p = subprocess.run(self.ctx.agent_argv + ["zones", "--config", self.conf], capture_output=True,
                               text=True, timeout=5)
            return (p.stdout + p.stderr).strip() + ("" if p.returncode == 0 else f"\n(exit {p.returncode})")
        except (subprocess.TimeoutExpired, OSError) as e:
            return f"(zones command failed: {e})"

    def diag(self, masters=()):
        out = f"\n    edge-agent answers SOA: {self.serial()}; alive: {self.daemon.alive()}"
        out += "\n    `edge-agent zones`:\n" + "\n".join("      | " + l for l in self.zones().splitlines()[:20])
        out += "\n    edge-agent log:\n" + self.daemon.log_tail(20)
        for m in masters:
            out += f"\n    {m.label} log:\n" + m.daemon.log_tail(12)
        return out

    def wait_serial(self, serial, timeout, what, masters=()):
        """Polls (every 50 ms, bounded) until the agent answers the SOA with `serial`.
        Returns the elapsed seconds, or raises Fail with diagnostics."""
        t0 = time.monotonic()
        if not wait_until(lambda: self.serial()[1] == serial, timeout, 0.05):
            if not self.daemon.alive():
                raise Fail(f"{what}: edge-agent died (status {self.daemon.proc.returncode})" + self.diag(masters))
            raise Fail(f"{what}: edge-agent does not answer serial {serial} within {timeout} s" + self.diag(masters))
        return time.monotonic() - t0


def check_rrsets(server, version, names_types):
    """Compares the answers of `server` (ip, port) with `version` for each (owner, type).
    Returns a list of problems."""
    problems = []
    for owner, typ in names_types:
        r = query(server[0], server[1], owner, dns.rdatatype.from_text(typ))
        want = version.expect(owner, typ)
        if r is None:
            problems.append(f"{owner} {typ}: no answer")
            continue
        got = set()
        for rr in r.answer:
            if rr.name == dns.name.from_text(owner) and rr.rdtype == dns.rdatatype.from_text(typ):
                got |= norm_rrset(rr)
        if r.rcode() != dns.rcode.NOERROR or got != want:
            problems.append(f"{owner} {typ}: rcode {dns.rcode.to_text(r.rcode())}, {diff_text(want, got, 3)}")
        elif not (r.flags & dns.flags.AA):
            problems.append(f"{owner} {typ}: AA not set")
    return problems


SAMPLE = [(ZONE, "SOA"), (ZONE, "NS"), (ZONE, "MX"), (ZONE, "TXT"), (ZONE, "CAA"), (f"ns1.{ZONE}", "A"),
          (f"ns2.{ZONE}", "AAAA"), (f"_sip._udp.{ZONE}", "SRV"), (f"h000.{ZONE}", "A"), (f"h000.{ZONE}", "AAAA"),
          (f"h099.{ZONE}", "TXT"), (f"h199.{ZONE}", "A"), (f"h001.{ZONE}", "AAAA")]


# ---------------------------------------------------------------------------------------
# TSIG (RFC 8945) signing by hand, for the fake master: every field under our control

HMAC_SHA256 = dns.name.from_text("hmac-sha256.")


def _t48(t):
    return struct.pack("!HI", (t >> 32) & 0xFFFF, t & 0xFFFFFFFF)


def tsig_sign(wire, keyname, secret_b64, prior_mac, time_signed, timers_only=False, fudge=300,
              corrupt=False, pending=b""):
    """Appends a TSIG RR to `wire` (a message without TSIG).  prior_mac: the request MAC
    (first response) or the previous signed message's MAC (later messages), or None.
    pending: unsigned messages sent since the last signed one (RFC 8945 5.3.1).
    Returns (signed wire, mac)."""
    kn = dns.name.from_text(keyname)
    secret = base64.b64decode(secret_b64)
    data = b""
    if prior_mac is not None:
        data += struct.pack("!H", len(prior_mac)) + prior_mac
    data += pending + wire
    if timers_only:
        data += _t48(time_signed) + struct.pack("!H", fudge)
    else:
        data += kn.canonicalize().to_wire() + struct.pack("!HI", 255, 0) + HMAC_SHA256.to_wire() \
            + _t48(time_signed) + struct.pack("!HHH", fudge, 0, 0)
    mac = hmac.new(secret, data, hashlib.sha256).digest()
    sent_mac = bytes([mac[0] ^ 0xFF]) + mac[1:] if corrupt else mac
    orig_id = struct.unpack("!H", wire[:2])[0]
    rdata = HMAC_SHA256.to_wire() + _t48(time_signed) + struct.pack("!HH", fudge, len(sent_mac)) + sent_mac \
        + struct.pack("!HHH", orig_id, 0, 0)
    rr = kn.to_wire() + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata
    arcount = struct.unpack("!H", wire[10:12])[0]
    return wire[:10] + struct.pack("!H", arcount + 1) + wire[12:] + rr, mac


def rr_from_key(k):
    owner, ttl, typ, rdata = k.split(None, 3)
    return dns.rrset.from_text(owner, int(ttl), "IN", typ, rdata)


OUT_OF_ZONE = [("evil.test.", "A", "192.0.2.66"), ("xministry.test.", "A", "192.0.2.67"),
               ("test.", "TXT", '"junk above the zone"'), ("ministry.test.evil.", "A", "192.0.2.68")]


class FakeMaster:
    """A TSIG-signing master in Python on ip:port (UDP and TCP).  serve() sets the version
    it offers and how it misbehaves; events records what the agent asked."""

    MODES = ("sane", "unsigned", "wrong_key_name", "wrong_secret", "clock_skew", "clock_skew_back",
             "truncate_mid_message", "truncate_no_end", "closing_soa_differs", "bad_tsig_middle",
             "unsigned_last", "unsigned_middle", "out_of_zone")

    def __init__(self, lab, ip=FAKE_MASTER_IP, per_message=40):
        self.ip, self.port = ip, free_port(ip)
        self.label = f"fake-master@{ip}:{self.port}"
        self.per_message = per_message
        self.version = None          # offered in SOA answers
        self.xfr_version = None      # sent in transfers (None: same as version)
        self.mode = "sane"
        self.history = {}            # serial -> Version (for incremental IXFR)
        self.events = []             # (monotonic time, what, mode, detail)
        self.lock = threading.Lock()
        self.stop_flag = False
        self.until = time.monotonic() + THREAD_LIFETIME
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ip, self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((ip, self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()
        lab.closers.append(self.close)
        # the Daemon-like bits scenarios use for diagnostics
        self.daemon = self

    # diagnostics shaped like Daemon's
    def log_tail(self, n=12):
        with self.lock:
            ev = self.events[-n:]
        return "\n".join(f"      | {t:.2f} {w} mode={m} {d}" for t, w, m, d in ev) or "      | (no requests)"

    def alive(self):
        return not self.stop_flag

    @property
    def addr(self):
        return (self.ip, self.port)

    def serve(self, version, mode="sane", xfr_version=None, notify=None):
        assert mode in self.MODES, mode
        with self.lock:
            self.version, self.mode, self.xfr_version = version, mode, xfr_version
            if mode == "sane" and xfr_version is None:
                self.history[version.serial] = version
        if notify:
            self.send_notify(notify)

    def send_notify(self, target):
        """A correctly signed NOTIFY from our own address and port."""
        q = dns.message.make_query(ZONE, T.SOA)
        q.flags = dns.flags.AA
        q.set_opcode(dns.opcode.NOTIFY)
        q.answer.append(rr_from_key(self.version.keys_ordered()[0]))
        q.use_tsig(KEYRING, keyname=KEY_NAME)
        try:
            self.udp.sendto(q.to_wire(), target)
        except OSError:
            pass

    def count(self, since, whats=("soa", "axfr", "ixfr")):
        with self.lock:
            return sum(1 for t, w, _, _ in self.events if t >= since and w in whats)

    def _event(self, what, detail=""):
        with self.lock:
            self.events.append((time.monotonic(), what, self.mode, detail))

    def close(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()

    # --- signing according to the mode
    def _key(self):
        if self.mode == "wrong_key_name":
            return "other-key.", KEY_SECRET
        if self.mode == "wrong_secret":
            return KEY_NAME, WRONG_SECRET
        return KEY_NAME, KEY_SECRET

    def _now(self):
        off = {"clock_skew": 3600, "clock_skew_back": -3600}.get(self.mode, 0)
        return int(time.time()) + off

    def _parse_request(self, data, src, transport):
        try:
            q = dns.message.from_wire(data, keyring=KEYRING)
        except dns.message.UnknownTSIGKey:
            self._event("bad-request", f"{transport} {src}: unknown TSIG key")
            return None
        except Exception as e:  # noqa: BLE001
            self._event("bad-request", f"{transport} {src}: {type(e).__name__} {e}")
            return None
        return q

    def _response(self, q):
        r = dns.message.make_response(q)
        r.keyring, r.tsig = None, None   # we sign by hand
        r.flags |= dns.flags.AA
        return r

    def _soa_answer(self, q):
        r = self._response(q)
        r.answer.append(rr_from_key(self.version.keys_ordered()[0]))
        return self._sign_single(q, r.to_wire())

    def _sign_single(self, q, wire):
        if self.mode == "unsigned" or not q.had_tsig:
            return wire
        kn, sec = self._key()
        return tsig_sign(wire, kn, sec, q.mac, self._now())[0]

    def _refuse(self, q, rcode=dns.rcode.REFUSED):
        r = self._response(q)
        r.set_rcode(rcode)
        return r.to_wire()

    def _udp_loop(self):
        while not self.stop_flag and time.monotonic() < self.until:
            try:
                data, src = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) >= 3 and data[2] & 0x80:   # a response: the agent's NOTIFY ack
                self._event("notify-ack", f"{src}")
                continue
            q = self._parse_request(data, src, "udp")
            if q is None or self.version is None:
                continue
            qt = q.question[0].rdtype if q.question else None
            if not q.had_tsig:
                self._event("unsigned-request", f"udp {dns.rdatatype.to_text(qt) if qt else '?'}")
                out = self._refuse(q)
            elif qt == T.SOA:
                self._event("soa", "udp")
                out = self._soa_answer(q)
            else:
                self._event("other", f"udp {dns.rdatatype.to_text(qt) if qt else '?'}")
                out = self._refuse(q)
            try:
                self.udp.sendto(out, src)
            except OSError:
                pass

    def _tcp_loop(self):
        while not self.stop_flag and time.monotonic() < self.until:
            try:
                c, src = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(c, src), daemon=True).start()

    def _tcp_conn(self, c, src):
        c.settimeout(3.0)
        try:
            for _ in range(20):   # queries per connection, bounded
                hdr = _recv_exact(c, 2)
                if hdr is None:
                    return
                data = _recv_exact(c, struct.unpack("!H", hdr)[0])
                if data is None:
                    return
                q = self._parse_request(data, src, "tcp")
                if q is None or self.version is None:
                    return
                qt = q.question[0].rdtype if q.question else None
                if not q.had_tsig:
                    self._event("unsigned-request", f"tcp {dns.rdatatype.to_text(qt) if qt else '?'}")
                    out = self._refuse(q)
                    c.sendall(struct.pack("!H", len(out)) + out)
                    continue
                if qt == T.SOA:
                    self._event("soa", "tcp")
                    out = self._soa_answer(q)
                    c.sendall(struct.pack("!H", len(out)) + out)
                    continue
                if qt in (T.AXFR, T.IXFR):
                    if not self._transfer(c, q, qt):
                        return
                    continue
                self._event("other", f"tcp {dns.rdatatype.to_text(qt) if qt else '?'}")
                out = self._refuse(q)
                c.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return
        finally:
            c.close()

    def _transfer(self, c, q, qt):
        """Sends a transfer according to the mode.  Returns False if the connection was
        closed on purpose."""
        with self.lock:
            v = self.xfr_version or self.version
            mode = self.mode
        client_serial = None
        if qt == T.IXFR:
            for rr in q.authority:
                if rr.rdtype == T.SOA:
                    client_serial = rr[0].serial
        what = "ixfr" if qt == T.IXFR else "axfr"
        self._event(what, f"client serial {client_serial}, offering {v.serial}")
        keys = v.keys_ordered()
        soa, body = keys[0], keys[1:]
        if qt == T.IXFR and client_serial == v.serial:
            rrs = [soa]
        elif qt == T.IXFR and mode == "sane" and client_serial in self.history and client_serial != v.serial:
            old = self.history[client_serial].keys_ordered()
            olds, news = set(old), set(keys)
            rrs = [soa, old[0]] + [k for k in old[1:] if k not in news] + [soa] + \
                  [k for k in keys[1:] if k not in olds] + [soa]
        else:
            closing = soa
            if mode == "closing_soa_differs":
                closing = rr_key_with_serial(soa, (v.serial + 7) % 2**32)
            junk = [norm_record(n, 300, t, d) for n, t, d in OUT_OF_ZONE] if mode == "out_of_zone" else []
            rrs = [soa] + body[: len(body) // 2] + junk + body[len(body) // 2:] + [closing]
        # cut into messages
        chunks = [rrs[i:i + self.per_message] for i in range(0, len(rrs), self.per_message)]
        n = len(chunks)
        kn, sec = self._key()
        prior, pending = q.mac, b""
        for i, chunk in enumerate(chunks):
            r = self._response(q)
            if i > 0:
                r.question = []
            for k in chunk:
                r.answer.append(rr_from_key(k))
            wire = r.to_wire(max_size=65535)
            signed = True
            if mode == "unsigned" or (mode == "unsigned_last" and i == n - 1) or \
                    (mode == "unsigned_middle" and i == n // 2 and 0 < i < n - 1):
                signed = False
            if signed:
                out, mac = tsig_sign(wire, kn, sec, prior, self._now(), timers_only=(i > 0),
                                     corrupt=(mode == "bad_tsig_middle" and i == n // 2), pending=pending)
                prior, pending = mac, b""
            else:
                out = wire
                pending += wire
            if mode == "truncate_mid_message" and i == n // 2:
                c.sendall(struct.pack("!H", len(out)) + out[: len(out) // 2])
                return False
            if mode == "truncate_no_end" and i == n - 1:
                return False
            c.sendall(struct.pack("!H", len(out)) + out)
        return True


def rr_key_with_serial(soa_key, serial):
    owner, ttl, typ, rdata = soa_key.split(None, 3)
    f = rdata.split()
    f[2] = str(serial)
    return f"{owner} {ttl} {typ} {' '.join(f)}"


# ---------------------------------------------------------------------------------------
# downstream secondaries of edge-agent


class KnotSecondary:
    kind = "knot"

    def transfers(self, text, port):
        """['AXFR'|'IXFR'|'AXFR-style IXFR', ...] finished from 127.0.0.1@port in `text`."""
        out = []
        for line in text.splitlines():
            m = re.search(rf"(AXFR|IXFR), incoming, remote 127\.0\.0\.1@{port}, (.*)", line)
            if not m:
                continue
            if "AXFR-style" in m.group(2):
                out.append("AXFR-style IXFR")
            elif "finished" in m.group(2):
                if out and out[-1] == "AXFR-style IXFR":
                    continue
                out.append(m.group(1))
        return out

    def __init__(self, lab, primary):
        self.ip, self.port = KNOT_SECONDARY_IP, free_port(KNOT_SECONDARY_IP)
        self.label = f"knot-secondary@{self.ip}:{self.port}"
        d = lab.sub("knot-secondary")
        self.conf = os.path.join(d, "knot.conf")
        with open(self.conf, "w") as f:
            f.write(f"""server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: {self.ip}@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{d}/knot.sock"
database:
    storage: "{d}"
log:
  - target: stderr
    any: debug
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {KEY_SECRET}
remote:
  - id: agent
    address: {primary[0]}@{primary[1]}
    key: {KEY_NAME}
    via: {self.ip}
acl:
  - id: notify_signed
    address: {primary[0]}
    key: {KEY_NAME}
    action: notify
  - id: notify_unsigned        # the contract gives no key for `notify` targets
    address: {primary[0]}
    action: notify
  - id: xfr
    address: 127.0.0.0/8
    key: {KEY_NAME}
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: {ZONE}
    file: "{d}/ministry.test.zone"
    master: agent
    acl: [notify_signed, notify_unsigned, xfr]
""")
        self.daemon = lab.add(Daemon("knotd-secondary", ["knotd", "-c", self.conf], d))

    @property
    def addr(self):
        return (self.ip, self.port)


class BindSecondary:
    kind = "bind"

    def transfers(self, text, port):
        """named -g logs no transfer type at info level: a transfer of fewer records than
        half the zone is taken as incremental."""
        out = []
        full = len(Version(1).records())
        for m in re.finditer(rf"from 127\.0\.0\.1#{port}: Transfer completed: \d+ messages, (\d+) records", text):
            out.append("IXFR" if int(m.group(1)) < full // 2 else "AXFR or AXFR-style IXFR")
        return out

    def __init__(self, lab, primary):
        self.ip = "127.0.0.1"   # named binds only to interface addresses
        self.port = free_port(self.ip)
        self.label = f"bind-secondary@{self.ip}:{self.port}"
        d = lab.sub("bind-secondary")
        self.conf = os.path.join(d, "named.conf")
        with open(self.conf, "w") as f:
            f.write(f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ {self.ip}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ key "{KEY_NAME}"; }};
    request-ixfr yes;
    masterfile-format text;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{KEY_SECRET}"; }};
zone "{ZONE}" {{
    type secondary;
    primaries {{ {primary[0]} port {primary[1]} key "{KEY_NAME}"; }};
    file "{d}/ministry.test.db";
}};
""")
        self.daemon = lab.add(Daemon("named-secondary", ["named", "-g", "-n", "1", "-c", self.conf], d))

    @property
    def addr(self):
        return (self.ip, self.port)


# ---------------------------------------------------------------------------------------
# scenarios.  Each takes (ctx, lab, variant) and raises Fail; info() lines are printed.


def info(ctx, text):
    ctx.notes.append(text)


def new_log(master, mark):
    """The master's log written since `mark` (a length of log_text())."""
    return master.log_text()[mark:]


def scen_masters(ctx, lab, kind):
    """The master side alone: AXFR with the key (and refusals), NOTIFY, IXFR."""
    lst = NotifyListener(AGENT_IP)
    lab.closers.append(lst.close)
    m = make_master(lab, kind, 0, notify=[(lst.ip, lst.port)])
    v1 = Version(100)
    m.start(v1)
    errs = []
    recs, err = kdig_axfr(m.ip, m.port)
    if err or recs != v1.rrset_keys():
        errs.append(f"kdig AXFR with the key: {err or diff_text(v1.rrset_keys(), recs)}")
    recs, err = kdig_axfr(m.ip, m.port, key=False)
    if recs:
        errs.append(f"unsigned AXFR was served ({len(recs)} records)")
    mark = len(m.log_text())
    for label, kw in (("wrong key name", dict(keyname="other-key.")), ("wrong secret", dict(secret=WRONG_SECRET))):
        msgs, err = xfr_messages(m.ip, m.port, **kw)
        if any(mm.answer for mm in msgs):
            errs.append(f"AXFR with a {label} was served")
    if not wait_until(lambda: re.search(m.re_tsig_fail, new_log(m, mark)), 2):
        errs.append(f"no TSIG refusal in the master's log (pattern {m.re_tsig_fail!r})")
    wait_until(lambda: lst.seen, 1.5)
    at_start = list(lst.seen)
    lst.seen.clear()
    v2 = v1.with_(serial=101, extra=(("changed", "A", "203.0.113.7"),))
    mark = len(m.log_text())
    m.publish(v2)
    t0 = time.monotonic()
    wait_until(lambda: any(s[3] == 101 for s in lst.seen), 3, 0.02)
    n = [s for s in lst.seen if s[3] == 101]
    if not n:
        errs.append(f"no NOTIFY with serial 101 within 3 s of the reload (seen: {lst.seen})")
    else:
        src, transport, signed, _ = n[0]
        if src != m.ip:
            errs.append(f"NOTIFY came from {src}, not the master's address {m.ip}")
        if signed != "signed":
            errs.append(f"NOTIFY was {signed}")
        info(ctx, f"{kind}: NOTIFY over {transport.upper()}, {signed}, from {src}, "
                  f"{time.monotonic() - t0:.2f} s after the master served the change; at startup: "
                  + (f"yes ({at_start[0][1].upper()})" if at_start else "no"))
    msgs, err = xfr_messages(m.ip, m.port, "IXFR", serial=100)
    res, how, e2 = apply_ixfr(v1.rrset_keys(), msgs) if not err else (None, None, err)
    if e2 or res != v2.rrset_keys() or how != "incremental":
        errs.append(f"IXFR from 100 after a reload: {e2 or how}: {diff_text(v2.rrset_keys(), res or set())}")
    if m.re_ixfr_out and not wait_until(lambda: re.search(m.re_ixfr_out, new_log(m, mark)), 2):
        errs.append(f"the master's log does not show the IXFR (pattern {m.re_ixfr_out!r})")
    v3 = v2.with_(serial=1101)
    m.restart(v3)
    msgs, err = xfr_messages(m.ip, m.port, "IXFR", serial=101)
    res, how, e2 = apply_ixfr(v2.rrset_keys(), msgs) if not err else (None, None, err)
    if e2 or res != v3.rrset_keys():
        errs.append(f"IXFR from 101 after a restart with serial 1101: {e2}: {diff_text(v3.rrset_keys(), res or set())}")
    else:
        info(ctx, f"{kind}: IXFR across a restart with an edited zone file: {how}")
    if errs:
        raise Fail("; ".join(errs) + "\n    master log:\n" + m.daemon.log_tail(15))


def scen_initial(ctx, lab, kind):
    """Initial AXFR: the agent answers the master's serial and the names within 5 s."""
    ap = free_port(AGENT_IP)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v = Version(2024010100, timers=SLOW)
    m.start(v)
    a = Agent(lab, ctx, [m.addr], port=ap)
    t0 = time.monotonic()
    a.start()
    a.wait_serial(v.serial, 5, "initial transfer", [m])
    info(ctx, f"initial[{kind}]: serial answered {time.monotonic() - t0:.2f} s after start")
    probs = check_rrsets(a.addr, v, SAMPLE)
    first, last, stamps, p2 = sweep(a.ip, a.port, v)
    if set(stamps) != {"base"}:
        probs.append(f"TXT stamps {dict((k, len(x)) for k, x in stamps.items())}: {p2[:3]}")
    r = query(a.ip, a.port, f"nope.{ZONE}", T.A)
    if r is None or r.rcode() != dns.rcode.NXDOMAIN or not any(rr.rdtype == T.SOA for rr in r.authority):
        probs.append(f"nope.{ZONE} A: expected NXDOMAIN with the SOA, got "
                     f"{'nothing' if r is None else dns.rcode.to_text(r.rcode())}")
    if probs:
        raise Fail("answers differ from the master's zone: " + "; ".join(probs[:8]) + a.diag([m]))


def scen_notify(ctx, lab, kind):
    """A one-record change + NOTIFY arrives within ~2 s, by IXFR; then a modification and a
    deletion.  SOA refresh is 3600 s, so only the NOTIFY can explain a prompt refresh."""
    ap = free_port(AGENT_IP)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v1 = Version(100, timers=SLOW)
    m.start(v1)
    a = Agent(lab, ctx, [m.addr], port=ap)
    a.start()
    a.wait_serial(100, 5, "initial transfer", [m])
    steps = [
        (v1.with_(serial=101, extra=(("changed", "A", "203.0.113.7"), ("changed", "TXT", '"stamp=base"'))),
         [(f"changed.{ZONE}", "A"), (f"changed.{ZONE}", "TXT"), (ZONE, "SOA")]),
    ]
    v2 = steps[0][0]
    steps.append((v2.with_(serial=102, drop=(("h005", "A"), ("h006", "AAAA")),
                           extra=v2.extra + (("h005", "A", "203.0.113.8"),)),
                  [(f"h005.{ZONE}", "A"), (f"h006.{ZONE}", "AAAA"), (ZONE, "SOA")]))
    for v, checks in steps:
        mark = len(m.log_text())
        m.publish(v)
        t0 = time.monotonic()
        a.wait_serial(v.serial, 5, f"NOTIFY for serial {v.serial}", [m])
        dt = time.monotonic() - t0
        probs = check_rrsets(a.addr, v, checks)
        if probs:
            raise Fail(f"serial {v.serial} answered but: " + "; ".join(probs) + a.diag([m]))
        if dt > 2.0:
            raise Fail(f"serial {v.serial} took {dt:.2f} s after the master served it (limit 2 s)" + a.diag([m]))
        how = "IXFR" if re.search(m.re_ixfr_out, new_log(m, mark)) else \
            ("AXFR" if re.search(m.re_xfr_out, new_log(m, mark)) else "unknown")
        info(ctx, f"notify[{kind}]: serial {v.serial} answered {dt:.2f} s after the master served it, by {how}")
        if how != "IXFR":
            raise Fail(f"serial {v.serial} was not transferred by IXFR (master's log: {how}; "
                       f"pattern {m.re_ixfr_out!r})\n    master log:\n" + m.daemon.log_tail(10))


def scen_jump(ctx, lab, kind):
    """Serial +1000 with a master restart, then +1000 across 2^32 (RFC 1982) with a restart."""
    ap = free_port(AGENT_IP)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v1 = Version(4294966000, timers=FAST)
    m.start(v1)
    a = Agent(lab, ctx, [m.addr], port=ap)
    a.start()
    a.wait_serial(v1.serial, 5, "initial transfer", [m])
    v = v1
    for n, label in ((1, "serial +1000"), (2, "serial +1000 across 2^32")):
        v = v.with_(serial=v.serial + 1000, extra=(("jump", "A", f"203.0.113.{10 + n}"),))
        m.restart(v)
        dt = a.wait_serial(v.serial, 10, f"{label} to {v.serial} after a master restart", [m])
        probs = check_rrsets(a.addr, v, [(f"jump.{ZONE}", "A"), (f"h010.{ZONE}", "TXT")])
        if probs:
            raise Fail(f"{label}: " + "; ".join(probs) + a.diag([m]))
        info(ctx, f"jump[{kind}]: {label} ({v.serial}) answered after {dt:.2f} s")


def scen_failover(ctx, lab, kind):
    """First master down (then hung): the agent refreshes from the second.  The second
    master sends no NOTIFY: only the SOA timers (refresh 2 s, retry 1 s) can find it."""
    ap = free_port(AGENT_IP)
    m1 = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    m2 = make_master(lab, kind, 1)
    v1 = Version(100, timers=FAST)
    m1.start(v1)
    m2.start(v1)
    a = Agent(lab, ctx, [m1.addr, m2.addr], port=ap)
    a.start()
    a.wait_serial(100, 5, "initial transfer", [m1, m2])
    m1.stop()
    v2 = v1.with_(serial=101, extra=(("changed", "A", "203.0.113.7"),))
    m1.write_zone(v2)
    m2.publish(v2)
    dt = a.wait_serial(101, 15, f"first master {m1.label} down: serial 101 from {m2.label}", [m1, m2])
    info(ctx, f"failover[{kind}]: master down -> serial from the second after {dt:.2f} s")
    z = a.zones()
    if f"{m2.ip}:{m2.port}" not in z and f"{m2.ip}@{m2.port}" not in z and f"{m2.ip}#{m2.port}" not in z:
        info(ctx, f"failover[{kind}]: note: `edge-agent zones` does not name {m2.ip}:{m2.port} as the master used")
    # now hung: accepts connections (kernel backlog), never answers
    m1.start(v2)
    m1.daemon.pause()
    v3 = v2.with_(serial=102, extra=(("changed", "A", "203.0.113.8"),))
    m1.write_zone(v3)
    m2.publish(v3)
    dt = a.wait_serial(102, 25, f"first master {m1.label} hung (SIGSTOP): serial 102 from {m2.label}", [m2])
    info(ctx, f"failover[{kind}]: master hung -> serial from the second after {dt:.2f} s")
    m1.daemon.resume()


def _expect_served(a, serial, until, what, masters):
    """Polls until `until` (monotonic): the agent must keep answering `serial`."""
    for _ in range(1000):
        if time.monotonic() >= until:
            return
        rc, s = a.serial()
        if s != serial:
            raise Fail(f"{what}: the agent stopped answering serial {serial} too early ({rc}, {s})" + a.diag(masters))
        time.sleep(0.5)


def _servfail(a):
    rc, _ = a.serial()
    r = query(a.ip, a.port, f"h001.{ZONE}", T.A)
    return rc == "SERVFAIL" and r is not None and r.rcode() == dns.rcode.SERVFAIL


def scen_expire(ctx, lab, kind):
    """All masters down: served until expire (12 s), then SERVFAIL; recovers when a master
    returns.  For the first master kind also: the node off across the expire deadline."""
    refresh, retry, expire = EXPIRE
    ap = free_port(AGENT_IP)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v1 = Version(100, timers=EXPIRE)
    m.start(v1)
    a = Agent(lab, ctx, [m.addr], port=ap)
    a.start()
    a.wait_serial(100, 5, "initial transfer", [m])
    time.sleep(refresh + 0.5)    # at least one refresh by the timer
    m.stop()
    t_down = time.monotonic()
    # the last successful refresh was at most `refresh` (+ jitter) before t_down
    _expect_served(a, 100, t_down + expire - refresh - retry - 2, "masters down", [m])
    if not wait_until(lambda: _servfail(a), (t_down + expire + 8) - time.monotonic(), 0.25):
        raise Fail(f"no SERVFAIL {expire + 8} s after every master went down (expire {expire} s): SOA {a.serial()}"
                   + a.diag([m]))
    info(ctx, f"expire[{kind}]: SERVFAIL {time.monotonic() - t_down:.1f} s after the masters went down (expire {expire})")
    v2 = v1.with_(serial=101)
    m.start(v2)
    dt = a.wait_serial(101, 10, "recovery after expire", [m])
    info(ctx, f"expire[{kind}]: recovered {dt:.2f} s after the master came back")
    if kind != ctx.masters[0]:
        return
    # the node off across the deadline: on start it must not serve the expired zone
    time.sleep(0.5)
    a.stop()
    m.stop()
    time.sleep(expire + 2)
    a.start()
    seen = []
    t_end = time.monotonic() + 2.0
    for _ in range(100):
        if time.monotonic() > t_end:
            break
        seen.append(a.serial())
        time.sleep(0.1)
    if any(s is not None for _, s in seen):
        raise Fail(f"started after being off past the expire deadline, the agent served the expired zone: "
                   f"{[x for x in seen if x[1] is not None][:3]}" + a.diag([m]))
    if not _servfail(a):
        raise Fail(f"started after being off past the expire deadline: expected SERVFAIL, got {a.serial()}" + a.diag([m]))
    m.start(v2.with_(serial=102))
    a.wait_serial(102, 10, "recovery after the node was off past expire", [m])
    info(ctx, f"expire[{kind}]: off across the deadline -> SERVFAIL at start, then recovered")


def scen_tsig(ctx, lab, kind):
    """A wrong key name and a wrong secret (real master), or a skewed clock (fake master):
    the zone is not transferred; then the right key works."""
    ap = free_port(AGENT_IP)
    if kind == "clock-skew":
        return _tsig_skew(ctx, lab, ap)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v = Version(100, timers=FAST)
    m.start(v)
    for i, (label, keys, mkey) in enumerate((("wrong key name", [("other-key.", KEY_SECRET)], "other-key."),
                                             ("wrong secret", [(KEY_NAME, WRONG_SECRET)], KEY_NAME))):
        mark = len(m.log_text())
        a = Agent(lab, ctx, [m.addr], port=ap, name=f"agent-{i}", keys=keys, master_key=mkey,
                  allow_transfer=((("127.0.0.0/8", mkey),)))
        a.start()
        t_end = time.monotonic() + 4
        for _ in range(200):
            if time.monotonic() > t_end:
                break
            rc, s = a.serial()
            if s is not None:
                raise Fail(f"{label}: the agent serves the zone (serial {s}): it accepted a transfer it could not "
                           "authenticate" + a.diag([m]))
            time.sleep(0.2)
        if not re.search(m.re_tsig_fail, new_log(m, mark)):
            raise Fail(f"{label}: the master logged no refused TSIG request in 4 s (pattern {m.re_tsig_fail!r}): "
                       "did the agent try to refresh?" + a.diag([m]))
        info(ctx, f"tsig[{kind}]: {label}: not transferred, the master refused it; agent answers {a.serial()[0]}")
        a.stop()
    a = Agent(lab, ctx, [m.addr], port=ap, name="agent-right-key")
    a.start()
    a.wait_serial(100, 5, "control: the right key", [m])


def _tsig_skew(ctx, lab, ap):
    fm = FakeMaster(lab)
    v = Version(100, timers=FAST)
    fm.serve(v, mode="clock_skew")
    a = Agent(lab, ctx, [fm.addr], port=ap)
    a.start()
    for mode in ("clock_skew", "clock_skew_back"):
        since = time.monotonic()
        fm.serve(v, mode=mode, notify=a.addr)
        t_end = since + 4
        for _ in range(200):
            if time.monotonic() > t_end:
                break
            if a.serial()[1] is not None:
                raise Fail(f"{mode}: the agent accepted responses signed {'+' if mode == 'clock_skew' else '-'}3600 s "
                           "off (fudge 300)" + a.diag([fm]))
            time.sleep(0.2)
        if fm.count(since) == 0:
            raise Fail(f"{mode}: the agent sent no SOA query or transfer to the fake master in 4 s (NOTIFY sent)"
                       + a.diag([fm]))
        info(ctx, f"tsig[clock-skew]: {mode}: {fm.count(since)} requests, all refused by the agent")
    fm.serve(v, mode="sane", notify=a.addr)
    a.wait_serial(100, 5, "control: the fake master with a sane clock", [fm])


def scen_unlisted(ctx, lab, kind):
    """NOTIFY from 127.0.0.99 (unsigned and signed), and unsigned or badly signed from the
    master's address, are refused and trigger nothing; a signed one from the master works."""
    m = make_master(lab, kind, 0)   # sends no NOTIFY itself
    v1 = Version(100, timers=SLOW)
    m.start(v1)
    a = Agent(lab, ctx, [m.addr])
    a.start()
    a.wait_serial(100, 5, "initial transfer", [m])
    v2 = v1.with_(serial=101, extra=(("changed", "A", "203.0.113.7"),))
    m.publish(v2)
    tries = [(f"unsigned NOTIFY from {UNLISTED_IP}", UNLISTED_IP, dict(key=False)),
             (f"signed NOTIFY from {UNLISTED_IP}", UNLISTED_IP, dict(key=True)),
             (f"unsigned NOTIFY from the master's address {m.ip}", m.ip, dict(key=False)),
             (f"NOTIFY from {m.ip} signed with a wrong secret", m.ip, dict(key=True, secret=WRONG_SECRET)),
             (f"NOTIFY from {m.ip} signed with an unknown key", m.ip, dict(key=True, keyname="other-key."))]
    errs = []
    for label, src, kw in tries:
        rc = send_notify(a.addr, src, serial=101, **kw)
        if rc not in ("REFUSED", "NOTAUTH") and not rc.startswith("TSIG error"):
            errs.append(f"{label}: answered {rc} (expected REFUSED or NOTAUTH)")
        else:
            info(ctx, f"unlisted[{kind}]: {label}: {rc}")
    time.sleep(2.5)
    rc, s = a.serial()
    if s != 100:
        errs.append(f"after the refused NOTIFYs the agent answers serial {s} ({rc}): a refused NOTIFY triggered a transfer")
    if errs:
        raise Fail("; ".join(errs) + a.diag([m]))
    rc = send_notify(a.addr, m.ip, serial=101, key=True)
    if rc != "NOERROR":
        raise Fail(f"control: a signed NOTIFY from the master's address {m.ip} was answered {rc}" + a.diag([m]))
    a.wait_serial(101, 3, "control: signed NOTIFY from the master's address", [m])


def scen_downstream(ctx, lab, kind):
    """Knot and BIND as secondaries of edge-agent (TSIG): AXFR, then IXFR after changes
    upstream driven by the agent's NOTIFY; their zones equal the agent's (kdig AXFR)."""
    ap = free_port(AGENT_IP)
    ks = KnotSecondary(lab, (AGENT_IP, ap))
    bs = BindSecondary(lab, (AGENT_IP, ap))
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    v = Version(100, timers=SLOW)
    m.start(v)
    a = Agent(lab, ctx, [m.addr], port=ap, notify=[ks.addr, bs.addr])
    a.start()
    a.wait_serial(100, 5, "initial transfer", [m])
    # a secondary's first question is a signed SOA query: the answer must be signed
    # (RFC 8945 5.3); BIND refuses an unsigned one ("expected a TSIG or SIG(0)")
    for tcp in (False, True):
        q = dns.message.make_query(ZONE, T.SOA)
        q.use_tsig(KEYRING, keyname=KEY_NAME)
        try:
            r = (dns.query.tcp if tcp else dns.query.udp)(q, a.ip, port=a.port, timeout=2)
        except Exception as e:  # noqa: BLE001
            raise Fail(f"TSIG-signed SOA query over {'TCP' if tcp else 'UDP'}: {type(e).__name__}: {e}" + a.diag())
        if not r.had_tsig:
            raise Fail(f"the agent answered a TSIG-signed SOA query over {'TCP' if tcp else 'UDP'} without a TSIG "
                       "(RFC 8945 5.3: the response to a signed request is signed); BIND as a secondary then "
                       "refuses the agent: 'expected a TSIG or SIG(0)'" + a.diag())
    secs = (ks, bs)
    marks = {s: 0 for s in secs}
    for s in secs:
        s.daemon.start()

    def follow(v, first):
        for s in secs:
            if not wait_until(lambda: soa_serial(s.ip, s.port)[1] == v.serial, 8, 0.05):
                raise Fail(f"{s.label} does not reach serial {v.serial} from the agent within 8 s "
                           f"(answers {soa_serial(s.ip, s.port)}); its log:\n{s.daemon.log_tail(15)}" + a.diag())
            kinds = wait_until(lambda: s.transfers(read_text(s.daemon.logpath)[marks[s]:], ap), 2)
            if not kinds:
                raise Fail(f"{s.label} reached serial {v.serial} but its log shows no transfer from the agent "
                           f"(127.0.0.1:{ap}); log:\n" + s.daemon.log_tail(12))
            if not first and kinds[-1] != "IXFR":
                raise Fail(f"{s.label} got serial {v.serial} by {kinds[-1]}, not IXFR, although the agent's journal "
                           "has the change; its log:\n" + s.daemon.log_tail(12))
            if first and "IXFR" in kinds:
                raise Fail(f"{s.label}: first transfer was {kinds}")
            marks[s] = len(read_text(s.daemon.logpath))
        ref, err = kdig_axfr(a.ip, a.port)
        if err or ref != v.rrset_keys():
            raise Fail(f"kdig AXFR from the agent at serial {v.serial}: {err or diff_text(v.rrset_keys(), ref)}")
        for s in secs:
            got, err = kdig_axfr(s.ip, s.port)
            if err or got != ref:
                raise Fail(f"kdig AXFR from {s.label} differs from the agent's: {err or diff_text(ref, got)}")

    follow(v, True)
    info(ctx, f"downstream[{kind}]: Knot and BIND AXFRed serial 100 from the agent; zones identical")
    for step in range(2):
        old = v
        if step == 0:
            v = v.with_(serial=101, extra=(("changed", "A", "203.0.113.7"),))
        else:
            v = v.with_(serial=102, drop=(("h005", "A"),), extra=v.extra + (("h005", "A", "203.0.113.9"),))
        m.publish(v)
        t0 = time.monotonic()
        a.wait_serial(v.serial, 3, f"upstream change to {v.serial}", [m])
        follow(v, False)
        info(ctx, f"downstream[{kind}]: serial {v.serial}: both secondaries IXFRed it "
                  f"{time.monotonic() - t0:.2f} s after the upstream change (their SOA refresh is 3600 s)")
        msgs, err = xfr_messages(a.ip, a.port, "IXFR", serial=old.serial)
        res, how, e2 = apply_ixfr(old.rrset_keys(), msgs) if not err else (None, None, err)
        if e2 or res != v.rrset_keys() or how != "incremental":
            raise Fail(f"IXFR from the agent from {old.serial}: {e2 or how}: {diff_text(v.rrset_keys(), res or set())}")
    msgs, err = xfr_messages(a.ip, a.port, "IXFR", serial=100)
    res, how, e2 = apply_ixfr(Version(100, timers=SLOW).rrset_keys(), msgs) if not err else (None, None, err)
    if e2 or res != v.rrset_keys():
        raise Fail(f"IXFR from the agent from 100 (two versions back): {e2 or how}: {diff_text(v.rrset_keys(), res or set())}")
    info(ctx, f"downstream[{kind}]: IXFR 100 -> {v.serial} from the agent: {how}")
    refused = []
    for label, kw in (("unsigned", dict(key=False)), ("wrong key name", dict(keyname="other-key.")),
                      ("wrong secret", dict(secret=WRONG_SECRET))):
        msgs, err = xfr_messages(a.ip, a.port, **kw)
        if any(mm.answer for mm in msgs):
            raise Fail(f"the agent served an AXFR to an {label} request (allow_transfer requires {KEY_NAME})")
        refused.append(f"{label}: {err}")
    info(ctx, f"downstream[{kind}]: transfers out refused: " + "; ".join(refused))


def scen_crash(ctx, lab, kind):
    """SIGKILL at random moments during >= 50 transfers; after each restart (the master
    paused, so nothing changes during the check) every answer comes from one version, no
    older than the last one answered before the kill; finally the journal answers an IXFR."""
    rnd = random.Random(ctx.seed)
    ap = free_port(AGENT_IP)
    m = make_master(lab, kind, 0, notify=[(AGENT_IP, ap)])
    base = Version(1000, stamp=1000, timers=FAST)
    m.start(base)
    a = Agent(lab, ctx, [m.addr], port=ap)
    a.start()
    a.wait_serial(1000, 5, "initial transfer", [m])
    t_start = time.monotonic()
    budget, min_transfers, max_iter = 150.0, 50, 200
    st = dict(published=1000, confirmed=1000, kills=0)
    first_served = {}

    def kill_and_check(when):
        """SIGKILL, pause the master (so nothing changes while we look), restart, check
        that one complete version is answered, resume the master."""
        a.kill9()
        st["kills"] += 1
        k = st["kills"]
        m.daemon.pause()
        try:
            t0 = time.monotonic()
            a.start()
            if not wait_until(lambda: a.serial()[1] is not None, 3, 0.05):
                raise Fail(f"restart {k}: the zone is not answered within 3 s of start (from the store) "
                           f"while the master is paused: {a.serial()}" + a.diag())
            first, last, stamps, probs = sweep(a.ip, a.port, base)
            if probs or len(stamps) != 1 or not (first == last == int(next(iter(stamps)))):
                raise Fail(f"restart {k} (killed {when}, serial {st['published']} published): a mixed or "
                           f"incomplete version: SOA {first} then {last}; TXT stamps "
                           f"{ {s: len(x) for s, x in stamps.items()} }; {probs[:3]}" + a.diag())
            if not (st["confirmed"] <= first <= st["published"]):
                raise Fail(f"restart {k}: serves serial {first}, but {st['confirmed']} was answered before the "
                           f"kill and {st['published']} is the newest" + a.diag())
            first_served[k] = (first, time.monotonic() - t0, st["published"])
        finally:
            m.daemon.resume()
        m.notify_now()

    transfers = 0
    for it in range(max_iter):
        if time.monotonic() - t_start > budget or (transfers >= min_transfers + 10 and st["kills"] >= 30):
            break
        st["published"] += 1
        m.publish(base.with_(serial=st["published"], stamp=st["published"]), wait=False)
        if rnd.random() < 0.6:
            # kills spread over the NOTIFY -> SOA -> IXFR -> commit window (a few ms to a few
            # hundred ms after the master loads the change) and after it
            x = rnd.random()
            time.sleep(rnd.uniform(0, 0.03) if x < 0.4 else rnd.uniform(0.03, 0.15) if x < 0.7 else rnd.uniform(0.15, 0.6))
            kill_and_check("after a change")
            if rnd.random() < 0.25:   # again while it catches up after the restart
                time.sleep(rnd.uniform(0, 0.3))
                kill_and_check("while catching up after a restart")
        if not wait_until(lambda: a.serial()[1] == st["published"], 12, 0.05):
            raise Fail(f"iteration {it}: the agent does not reach serial {st['published']} within 12 s "
                       f"(answers {a.serial()})" + a.diag([m]))
        st["confirmed"] = st["published"]
        transfers += 1
    published, kills = st["published"], st["kills"]
    elapsed = time.monotonic() - t_start
    if transfers < min_transfers:
        raise Fail(f"only {transfers} transfers in {elapsed:.0f} s (need {min_transfers}): too slow")
    back = 10
    msgs, err = xfr_messages(a.ip, a.port, "IXFR", serial=published - back)
    old = base.with_(serial=published - back, stamp=published - back)
    new = base.with_(serial=published, stamp=published)
    res, how, e2 = apply_ixfr(old.rrset_keys(), msgs) if not err else (None, None, err)
    if e2 or res != new.rrset_keys():
        raise Fail(f"after {kills} kills, IXFR from the agent from {published - back}: {e2 or how}: "
                   f"{diff_text(new.rrset_keys(), res or set())}")
    olds = sum(1 for s, _, pub in first_served.values() if s < pub)
    info(ctx, f"crash[{kind}]: {transfers} transfers, {kills} SIGKILLs in {elapsed:.0f} s; after restart the older "
              f"version {olds} times, the newer {kills - olds} times; max time to answer after start "
              f"{max((t for _, t, _ in first_served.values()), default=0):.2f} s; IXFR {published - back}->{published}: {how}")


def scen_malformed(ctx, lab, kind):
    """A Python fake master sends broken transfers; each is rejected with the old version
    still served; then a sane transfer moves the zone on; out-of-zone records never served."""
    fm = FakeMaster(lab)
    v = Version(500, timers=(2, 1, 600))
    fm.serve(v)
    a = Agent(lab, ctx, [fm.addr])
    a.start()
    fm.send_notify(a.addr)
    a.wait_serial(500, 5, "initial transfer from the fake master", [fm])
    cur = v
    cases = [
        ("truncated inside a message", dict(mode="truncate_mid_message")),
        ("stream ends before the closing SOA", dict(mode="truncate_no_end")),
        ("closing SOA differs from the opening one", dict(mode="closing_soa_differs")),
        ("SOA answers a newer serial but the transfer carries an older one", dict(mode="sane", back="xfr")),
        ("the master's SOA serial goes back by 5", dict(mode="sane", back="soa")),
        ("bad TSIG MAC on a middle message", dict(mode="bad_tsig_middle")),
        ("last message unsigned", dict(mode="unsigned_last")),
        ("no TSIG at all on the responses", dict(mode="unsigned")),
        ("responses signed with an unknown key name", dict(mode="wrong_key_name")),
        ("responses signed with a wrong secret", dict(mode="wrong_secret")),
    ]
    errs = []
    for i, (label, kw) in enumerate(cases):
        nxt = cur.with_(serial=cur.serial + 1, stamp=f"bad{i}", extra=(("bad", "A", f"203.0.113.{100 + i}"),))
        back = cur.with_(serial=cur.serial - 5, stamp=f"back{i}")
        mode = kw["mode"]
        since = time.monotonic()
        if kw.get("back") == "xfr":
            fm.serve(nxt, mode=mode, xfr_version=back, notify=a.addr)
        elif kw.get("back") == "soa":
            fm.serve(back, mode=mode, notify=a.addr)
        else:
            fm.serve(nxt, mode=mode, notify=a.addr)
        needs = ("soa", "axfr", "ixfr") if mode in ("wrong_key_name", "wrong_secret", "unsigned") \
            or kw.get("back") == "soa" else ("axfr", "ixfr")
        if not wait_until(lambda: fm.count(since, needs) > 0, 6, 0.05):
            errs.append(f"{label}: the agent made no {'/'.join(needs)} request within 6 s of the NOTIFY")
            continue
        time.sleep(1.0)
        rc, s = a.serial()
        if s != cur.serial:
            errs.append(f"{label}: the agent now answers serial {s} ({rc}) instead of keeping {cur.serial}")
            # go on from whatever it took
            cur = {nxt.serial: nxt, back.serial: back}.get(s, cur)
            continue
        probs = check_rrsets(a.addr, cur, [(f"h007.{ZONE}", "TXT"), (f"bad.{ZONE}", "A")]) \
            if cur.expect(f"bad.{ZONE}", "A") else check_rrsets(a.addr, cur, [(f"h007.{ZONE}", "TXT")])
        b = query(a.ip, a.port, f"bad.{ZONE}", T.A)
        if not cur.expect(f"bad.{ZONE}", "A") and b is not None and b.answer:
            probs.append(f"bad.{ZONE} A answered {b.answer[0]}")
        if probs:
            errs.append(f"{label}: serial kept but data changed: " + "; ".join(probs))
            continue
        info(ctx, f"malformed: {label}: rejected ({fm.count(since)} requests), serial {cur.serial} kept")
    # RFC 8945 5.3.1 allows unsigned intermediate messages: report what the agent does
    nxt = cur.with_(serial=cur.serial + 1, stamp="unsigned-middle")
    since = time.monotonic()
    fm.serve(nxt, mode="unsigned_middle", notify=a.addr)
    wait_until(lambda: fm.count(since, ("axfr", "ixfr")) > 0, 6, 0.05)
    time.sleep(1.0)
    s = a.serial()[1]
    info(ctx, f"malformed: one unsigned message in the middle (allowed by RFC 8945 5.3.1): "
              f"{'accepted' if s == nxt.serial else 'rejected'} (serial {s})")
    if s == nxt.serial:
        cur = nxt
    # sane again: the zone moves on (from whichever version it has)
    good = cur.with_(serial=cur.serial + 1, stamp="good", extra=(("good", "A", "203.0.113.2"),))
    fm.serve(good, notify=a.addr)
    try:
        a.wait_serial(good.serial, 6, "the fake master sane again", [fm])
    except Fail as e:
        errs.append(str(e))
        raise Fail("; ".join(errs))
    probs = check_rrsets(a.addr, good, [(f"good.{ZONE}", "A"), (f"h007.{ZONE}", "TXT")])
    if probs:
        errs.append("sane transfer applied but: " + "; ".join(probs))
    # out-of-zone records inside an otherwise sane transfer
    ooz = good.with_(serial=good.serial + 1, stamp="ooz")
    since = time.monotonic()
    fm.serve(ooz, mode="out_of_zone", notify=a.addr)
    wait_until(lambda: fm.count(since, ("axfr", "ixfr")) > 0, 6, 0.05)
    time.sleep(1.0)
    s = a.serial()[1]
    info(ctx, f"malformed: transfer with out-of-zone records: {'applied without them' if s == ooz.serial else 'refused'} "
              f"(serial {s})")

    def junk_served():
        out = []
        for n, t, d in OUT_OF_ZONE:
            r = query(a.ip, a.port, n, dns.rdatatype.from_text(t))
            if r is not None and r.answer:
                out.append(f"{n} {t} answered {dns.rcode.to_text(r.rcode())} {r.answer[0]}")
        recs, err = kdig_axfr(a.ip, a.port)
        for k in recs or ():
            if not dns.name.from_text(k.split()[0]).is_subdomain(ZNAME):
                out.append(f"AXFR from the agent contains {k}")
        return out
    junk = junk_served()
    if junk:
        errs.append("out-of-zone records served: " + "; ".join(junk[:4]))
    final = good.with_(serial=ooz.serial + 1, stamp="final")
    fm.serve(final, notify=a.addr)
    try:
        a.wait_serial(final.serial, 6, "sane after the out-of-zone transfer", [fm])
    except Fail as e:
        errs.append(str(e))
    junk = junk_served()
    if junk:
        errs.append("out-of-zone records served after the next transfer: " + "; ".join(junk[:4]))
    if errs:
        raise Fail("; ".join(errs) + ("" if "edge-agent log" in errs[-1] else a.diag([fm])))


# name, function, variants(ctx) -> list of variant names, needs the agent
SCENARIOS = [
    ("masters", scen_masters, lambda c: c.masters, False),
    ("initial", scen_initial, lambda c: c.masters, True),
    ("notify", scen_notify, lambda c: c.masters, True),
    ("jump", scen_jump, lambda c: c.masters, True),
    ("failover", scen_failover, lambda c: c.masters, True),
    ("expire", scen_expire, lambda c: c.masters, True),
    ("tsig", scen_tsig, lambda c: c.masters + ["clock-skew"], True),
    ("unlisted", scen_unlisted, lambda c: c.masters, True),
    ("downstream", scen_downstream, lambda c: c.masters[:1], True),
    ("crash", scen_crash, lambda c: (["knot"] if "knot" in c.masters else c.masters[:1]), True),
    ("malformed", scen_malformed, lambda c: ["fake"], True),
]


class Ctx:
    pass


def resolve_agent(spec):
    """argv prefix for the agent, or (None, reason)."""
    if spec == "fake":
        return [sys.executable, os.path.join(HERE, "fake_agent.py")], None
    path = spec if os.path.isabs(spec) else os.path.join(REPO, spec)
    if not os.path.exists(path) and spec == "target/release/edge-agent":
        alt = os.path.join(REPO, "target/debug/edge-agent")
        if os.path.exists(alt):
            path = alt
    if not os.path.exists(path):
        return None, f"edge-agent binary not found at {path} (cargo build --release -p edge-agent, or --agent PATH)"
    return [path], None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default="target/release/edge-agent",
                    help="edge-agent binary (default target/release/edge-agent, else target/debug), or 'fake'")
    ap.add_argument("--masters", default="knot,bind,nsd", help="hidden master kinds (knot,bind,nsd)")
    ap.add_argument("--only", default="", help="comma-separated scenario names (or name[variant])")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--seed", type=int, default=None, help="seed of the crash test's random kills")
    args = ap.parse_args()
    ctx = Ctx()
    ctx.masters = [k.strip() for k in args.masters.split(",") if k.strip()]
    bad = [k for k in ctx.masters if k not in MASTER_KINDS]
    if bad or not ctx.masters:
        log(f"unknown master kind(s) {bad}: choose among {', '.join(MASTER_KINDS)}")
        return 2
    ctx.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    ctx.agent_argv, agent_err = resolve_agent(args.agent)
    need = ["kdig", "knotd", "knotc", "named", "nsd", "nsd-control"]   # secondaries: Knot and BIND
    missing = [b for b in need if shutil.which(b) is None and (b not in ("nsd", "nsd-control") or "nsd" in ctx.masters)]
    if missing:
        log(f"missing programs: {', '.join(sorted(set(missing)))}: apt-get install -y bind9 bind9-utils knot "
            "knot-dnsutils nsd dnsutils python3-dnspython")
        log("secondary: 0 passed, 1 failed")
        return 1
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    known = {n for n, *_ in SCENARIOS}
    unknown = [o for o in only if o.split("[")[0] not in known]
    if unknown:
        log(f"unknown scenario(s) {unknown}: {', '.join(n for n, *_ in SCENARIOS)}")
        return 2
    root = tempfile.mkdtemp(prefix="edgedns-secondary-")
    log(f"secondary: agent {' '.join(ctx.agent_argv) if ctx.agent_argv else '(none: ' + agent_err + ')'}; "
        f"masters {','.join(ctx.masters)}; crash seed {ctx.seed}; work dir {root}")
    passed = failed = 0
    t_all = time.monotonic()
    try:
        for name, fn, variants, needs_agent in SCENARIOS:
            for var in variants(ctx):
                label = f"{name}[{var}]"
                if only and name not in only and label not in only:
                    continue
                ctx.notes = []
                t0 = time.monotonic()
                ok, why = True, None
                if needs_agent and ctx.agent_argv is None:
                    ok, why = False, agent_err
                else:
                    lab = Lab(root, f"{name}-{var}")
                    try:
                        fn(ctx, lab, var)
                    except Fail as e:
                        ok, why = False, str(e)
                    except Exception:  # noqa: BLE001  (a harness bug: show it, count it)
                        ok, why = False, "harness error:\n" + traceback.format_exc()
                    finally:
                        lab.close()
                dt = time.monotonic() - t0
                for n in ctx.notes:
                    log(f"      {n}")
                if ok:
                    passed += 1
                    log(f"ok    {label} ({dt:.1f} s)")
                else:
                    failed += 1
                    log(f"FAIL  {label} ({dt:.1f} s): {why}")
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    log(f"total {time.monotonic() - t_all:.0f} s")
    log(f"secondary: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
