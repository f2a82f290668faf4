#!/usr/bin/env python3
# requirements (Debian): apt-get install -y nsd knot knot-dnsutils dnsutils python3-dnspython
#   (nsd 4.6 `nsd`, `nsd-checkzone`; Knot 3.2 `knotd`; python3-dnspython for the Debian
#   /usr/bin/python3.  Nothing else: no network, no systemd.)
"""Differential test harness: edge-agent vs NSD vs Knot.

Starts NSD, Knot and edge-agent on loopback ports with configurations written to a
temporary directory, sends the same queries (generated from zones/example.test.zone)
to all three and checks that edge-agent's answer equals NSD's or Knot's after
normalisation.  Also sends malformed packets and compares rcodes / silence.

    python3 tests/differential/run.py [--agent PATH|none] [--verbose] [--only SUBSTRING]

The last line printed is `differential: N passed, M failed`.  Exit status is non-zero if
anything failed or if fewer than 500 queries were compared (the minimum is not applied
with --only).  With `--agent none` only NSD and Knot run: every difference between them is
reported (these are what the normaliser has to tolerate) and a test fails only if a
reference server misbehaves (no answer to a well-formed query).
"""

import os
import sys

# dnspython comes from Debian's python3-dnspython, i.e. for /usr/bin/python3.  If we were
# started by another interpreter (pyenv, venv) that lacks it, re-execute under Debian's.
try:
    import dns.name  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.stderr.write("run.py: dnspython missing: apt-get install -y python3-dnspython\n")
    sys.exit(2)

import argparse
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections import Counter, OrderedDict

import dns.exception
import dns.flags
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rcode
import dns.zone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ZONE_NAME = "example.test."
ZONE_FILE = os.path.join(HERE, "zones", "example.test.zone")
MIN_QUERIES = 500
MAX_DETAILED = 60  # failures printed with full responses (all with --verbose)

QUERY_TIMEOUT = 1.0      # well-formed queries (UDP retried, see send_udp)
MALFORMED_TIMEOUT = 0.3  # malformed packets: no answer within this time = silence

T = dns.rdatatype
OPT = 41

# ---------------------------------------------------------------------------------------
# small utilities


def log(*a):
    print(*a, flush=True)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (bounded number of attempts)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            u.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("no free port found")


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def send_udp(port, wire, timeout, tries=1, expect_id=None):
    """Send one datagram; return the response bytes or None (silence)."""
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.sendto(wire, ("127.0.0.1", port))
            deadline = time.monotonic() + timeout
            while True:  # bounded by the deadline
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data, _ = s.recvfrom(65535)
                except socket.timeout:
                    break
                if expect_id is None or (len(data) >= 2 and struct.unpack("!H", data[:2])[0] == expect_id):
                    return data
        except OSError:
            pass
        finally:
            s.close()
    return None


def send_tcp(port, payload, timeout, raw=False):
    """Send one DNS message over a fresh TCP connection (length-prefixed unless raw).
    Returns the first response message, or None if the server closed or was silent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(payload if raw else struct.pack("!H", len(payload)) + payload)
        hdr = recv_exact(s, 2)
        if hdr is None:
            return None
        (n,) = struct.unpack("!H", hdr)
        return recv_exact(s, n)
    except (socket.timeout, OSError):
        return None
    finally:
        s.close()


# ---------------------------------------------------------------------------------------
# daemons


class Daemon:
    def __init__(self, name, argv, workdir, port):
        self.name, self.argv, self.workdir, self.port = name, argv, workdir, port
        self.proc = None
        self.logpath = os.path.join(workdir, name + ".log")

    def start(self):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, seconds=15.0, accept_any_answer=False):
        """Wait until the server answers an SOA query for the zone with NOERROR and an
        answer (bounded).  Returns True, or - with accept_any_answer - "answers" if it
        only ever gave some other response, else False."""
        q = build_query(ZONE_NAME, T.SOA, edns=None, rd=False, qid=4242)
        deadline = time.monotonic() + seconds
        answered = False
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            r = send_udp(self.port, q, 0.2, expect_id=4242)
            if r is not None and len(r) >= 12 and (r[3] & 0x0F) == 0 and struct.unpack("!H", r[6:8])[0] >= 1:
                return True
            if r is not None:
                answered = True
                if accept_any_answer and time.monotonic() > deadline - seconds + 3:
                    return "answers"
            time.sleep(0.1)
        return "answers" if (answered and accept_any_answer) else False

    def log_tail(self, n=25):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join("    " + l for l in lines[-n:])
        except OSError:
            return "    (no log)"

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                # our own process group (start_new_session): the daemon and its workers
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.logf.close()


def nsd_daemon(tmp, port):
    d = os.path.join(tmp, "nsd")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
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
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    tcp-count: 100
    reuseport: no
remote-control:
    control-enable: no
zone:
    name: "{ZONE_NAME}"
    zonefile: "{ZONE_FILE}"
""")
    return Daemon("nsd", ["nsd", "-d", "-c", conf], d, port)


def knot_daemon(tmp, port):
    d = os.path.join(tmp, "knot")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{d}/knot.sock"
database:
    storage: "{d}"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {ZONE_NAME}
    file: "{ZONE_FILE}"
""")
    return Daemon("knot", ["knotd", "-c", conf], d, port)


def agent_daemon(tmp, port, binary):
    d = os.path.join(tmp, "agent")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "edge-agent.toml")
    with open(conf, "w") as f:
        f.write(f"""[server]
listen = ["127.0.0.1:{port}"]
workers = 1

[[zone]]
name = "{ZONE_NAME}"
file = "{ZONE_FILE}"
""")
    return Daemon("agent", [binary, "--config", conf], d, port)


def start_with_retries(make, tmp, what, attempts=3):
    """Start a daemon on a fresh port; retry with another port if it does not come up."""
    last = None
    for _ in range(attempts):
        dmn = make(tmp, free_port())
        dmn.start()
        if dmn.wait_ready():
            return dmn, None
        msg = f"{what} did not answer SOA on 127.0.0.1:{dmn.port}"
        if not dmn.alive():
            msg += f" (exited with status {dmn.proc.returncode})"
        last = msg + "\n" + dmn.log_tail()
        dmn.stop()
    return None, last


# ---------------------------------------------------------------------------------------
# wire building


def name_wire(name):
    """Uncompressed wire form of a text name, keeping the case exactly."""
    return dns.name.from_text(name).to_wire()


def build_query(qname, qtype, edns=None, do=False, rd=False, cd=False, ad=False, qid=None,
                qclass=1, ednsopts=b""):
    qid = random.randrange(1, 65536) if qid is None else qid
    flags = 0
    if rd:
        flags |= 0x0100
    if ad:
        flags |= 0x0020
    if cd:
        flags |= 0x0010
    arcount = 1 if edns is not None else 0
    wire = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    wire += name_wire(qname) + struct.pack("!HH", qtype, qclass)
    if edns is not None:
        wire += opt_rr(edns, do=do, opts=ednsopts)
    return wire


def opt_rr(payload, do=False, version=0, ext_rcode=0, opts=b"", owner=b"\x00"):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", OPT, payload, ttl, len(opts)) + opts


# ---------------------------------------------------------------------------------------
# response parsing / normalisation

FLAG_BITS = OrderedDict([("qr", 0x8000), ("aa", 0x0400), ("tc", 0x0200), ("rd", 0x0100),
                         ("ra", 0x0080), ("z", 0x0040), ("ad", 0x0020), ("cd", 0x0010)])


class ParseError(Exception):
    pass


def read_name(wire, off):
    """Returns (lower-case text name, offset after the name in the record)."""
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(wire):
            raise ParseError("name runs past end")
        b = wire[off]
        if b & 0xC0 == 0xC0:
            if off + 1 >= len(wire):
                raise ParseError("truncated pointer")
            ptr = ((b & 0x3F) << 8) | wire[off + 1]
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > 64 or ptr >= len(wire):
                raise ParseError("bad compression pointer")
            off = ptr
            continue
        if b & 0xC0:
            raise ParseError("bad label type")
        if b == 0:
            off += 1
            break
        lab = wire[off + 1: off + 1 + b]
        if len(lab) != b:
            raise ParseError("truncated label")
        labels.append(lab)
        off += 1 + b
    if end is None:
        end = off
    text = ".".join(l.decode("latin-1") for l in labels) + "."
    return text.lower() if labels else ".", end


class Resp:
    """A parsed response, in the normalised form used for comparison."""

    def __init__(self, wire):
        self.wire = wire
        self.error = None
        if len(wire) < 12:
            raise ParseError("short header")
        (self.id, self.flagword, qd, an, ns, ar) = struct.unpack("!HHHHHH", wire[:12])
        self.opcode = (self.flagword >> 11) & 0xF
        self.flags = frozenset(k for k, v in FLAG_BITS.items() if self.flagword & v)
        self.rcode = self.flagword & 0xF
        self.counts = (qd, an, ns, ar)
        off = 12
        # question: exact bytes (case preserved)
        qstart = off
        self.qtext = []
        for _ in range(qd):
            n, off = read_name(wire, off)
            if off + 4 > len(wire):
                raise ParseError("truncated question")
            qt, qc = struct.unpack("!HH", wire[off:off + 4])
            off += 4
            self.qtext.append(f"{n} {dns.rdataclass.to_text(qc)} {dns.rdatatype.to_text(qt)}")
        self.question = wire[qstart:off]
        self.sections = {"answer": [], "authority": [], "additional": []}
        self.edns = None  # (version, do, payload)
        self.records_ok = True
        try:
            for sec, cnt in (("answer", an), ("authority", ns), ("additional", ar)):
                for _ in range(cnt):
                    owner, off = read_name(wire, off)
                    if off + 10 > len(wire):
                        raise ParseError("truncated RR header")
                    rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", wire[off:off + 10])
                    off += 10
                    if off + rdlen > len(wire):
                        raise ParseError("truncated RDATA")
                    if rtype == OPT:
                        self.edns = ((ttl >> 16) & 0xFF, bool(ttl & 0x8000), rclass)
                        self.rcode |= ((ttl >> 24) & 0xFF) << 4
                        self.opt_owner = owner
                    else:
                        try:
                            rd = dns.rdata.from_wire(rclass, rtype, wire, off, rdlen)
                            key = rd.to_digestable()
                            text = rd.to_text()
                        except Exception:  # unparseable rdata: compare raw
                            key = wire[off:off + rdlen]
                            text = "\\# %d %s" % (rdlen, key.hex())
                        self.sections[sec].append((owner, rtype, rclass, ttl, key, text))
                    off += rdlen
        except ParseError as e:
            self.records_ok = False
            self.error = str(e)
        self.trailing = len(wire) - off

    @property
    def tc(self):
        return "tc" in self.flags

    def rrsets(self, sec):
        groups = {}
        for (owner, rtype, rclass, ttl, key, _t) in self.sections[sec]:
            groups.setdefault((owner, rtype, rclass), set()).add((ttl, key))
        return frozenset((k, frozenset(v)) for k, v in groups.items())

    def records(self, sec):
        return frozenset((o, t, c, ttl, k) for (o, t, c, ttl, k, _x) in self.sections[sec])

    def text(self, indent="    "):
        out = [f"{indent};; opcode {self.opcode} rcode {dns.rcode.to_text(self.rcode) if self.rcode < 4096 else self.rcode}"
               f" flags {' '.join(f for f in FLAG_BITS if f in self.flags)}"
               f" counts qd={self.counts[0]} an={self.counts[1]} ns={self.counts[2]} ar={self.counts[3]}"
               f" size={len(self.wire)}"]
        if self.edns is not None:
            out.append(f"{indent};; EDNS version {self.edns[0]} do={int(self.edns[1])} udp={self.edns[2]}")
        out.append(f"{indent};; question {self.question!r} {self.qtext}")
        for sec in ("answer", "authority", "additional"):
            for (o, t, c, ttl, _k, txt) in sorted(self.sections[sec], key=lambda r: (r[0], r[1], r[5])):
                out.append(f"{indent}{sec[:4].upper()} {o} {ttl} {dns.rdataclass.to_text(c)} "
                           f"{dns.rdatatype.to_text(t)} {txt[:120]}{'...' if len(txt) > 120 else ''}")
        if self.error:
            out.append(f"{indent};; parse error: {self.error}")
        return "\n".join(out)


def parse(wire):
    if wire is None:
        return None
    try:
        return Resp(wire)
    except ParseError as e:
        class Bad:
            pass
        b = Bad()
        b.wire, b.error = wire, str(e)
        return b


def describe(r, indent="    "):
    if r is None:
        return indent + "(no answer)"
    if not isinstance(r, Resp):
        return f"{indent}(unparseable: {r.error}) {r.wire[:64].hex()}"
    return r.text(indent)


# ---------------------------------------------------------------------------------------
# comparison


class Zone:
    def __init__(self, path):
        self.z = dns.zone.from_file(path, origin=ZONE_NAME, relativize=False, check_origin=True)
        self.origin = dns.name.from_text(ZONE_NAME)
        ns = self.z.get_rdataset(self.origin, T.NS)
        self.apex_ns = ((ZONE_NAME, T.NS, 1), frozenset((ns.ttl, r.to_digestable()) for r in ns))


def rrset_diff(name, ours, ref):
    """Readable summary of two sets of RRsets."""
    def fmt(rs):
        (o, t, _c), recs = rs
        ttls = sorted({ttl for ttl, _k in recs})
        return f"{o} {dns.rdatatype.to_text(t)} ({len(recs)} rr, ttl {'/'.join(map(str, ttls))})"
    only_o = sorted(fmt(r) for r in ours - ref)
    only_r = sorted(fmt(r) for r in ref - ours)
    parts = []
    if only_o:
        parts.append("only ours: " + ", ".join(only_o[:4]) + (" ..." if len(only_o) > 4 else ""))
    if only_r:
        parts.append("only theirs: " + ", ".join(only_r[:4]) + (" ..." if len(only_r) > 4 else ""))
    return f"{name} section ({'; '.join(parts)})"


def without(rrsets, key3):
    return frozenset(r for r in rrsets if r[0] != key3)


def diff_core(ours, ref, zone):
    """Compare one response with one reference.  Returns a list of differences ([] = equal).
    Everything here must be equal except the tolerances of the spec."""
    d = []
    if ours.rcode != ref.rcode:
        d.append(f"rcode {dns.rcode.to_text(ours.rcode)} vs {dns.rcode.to_text(ref.rcode)}")
    if ours.opcode != ref.opcode:
        d.append(f"opcode {ours.opcode} vs {ref.opcode}")
    if ours.flags != ref.flags:
        d.append(f"flags {' '.join(sorted(ours.flags))} vs {' '.join(sorted(ref.flags))}")
    if ours.question != ref.question:
        d.append(f"question {ours.question!r} vs {ref.question!r}")
    if ours.tc or ref.tc:
        return d  # truncated: only rcode/flags/question
    if (ours.edns is None) != (ref.edns is None):
        d.append(f"EDNS present {ours.edns is not None} vs {ref.edns is not None}")
    elif ours.edns is not None and ours.edns[:2] != ref.edns[:2]:
        d.append(f"EDNS version/DO {ours.edns[:2]} vs {ref.edns[:2]}")
    if not ours.records_ok or not ref.records_ok:
        d.append(f"unparseable records: {ours.error} / {ref.error}")
        return d
    if ours.rrsets("answer") != ref.rrsets("answer"):
        d.append(rrset_diff("answer", ours.rrsets("answer"), ref.rrsets("answer")))
    oa, ra = ours.rrsets("authority"), ref.rrsets("authority")
    if oa != ra:
        positive = bool(ours.sections["answer"]) and bool(ref.sections["answer"])
        key = zone.apex_ns[0]
        ok = False
        if positive and without(oa, key) == without(ra, key):
            # the apex NS may be left out of positive answers; if present it must be right
            ok = all(r == zone.apex_ns for r in oa if r[0] == key)
        if not ok:
            d.append(rrset_diff("authority", oa, ra))
    return d


GLUE_TYPES = (T.A, T.AAAA)


def check_additional(ours, refs):
    """Additional: ours must be a subset of the union of the references' additional
    records and contain every A/AAAA record that all (non-truncated) references give."""
    refs = [r for r in refs if isinstance(r, Resp) and r.records_ok and not r.tc]
    if not refs or ours.tc:
        return []
    mine = ours.records("additional")
    union = frozenset().union(*[r.records("additional") for r in refs])
    inter = frozenset.intersection(*[r.records("additional") for r in refs])
    d = []
    extra = mine - union
    if extra:
        d.append("additional has records no reference gives: " +
                 ", ".join(f"{o} {dns.rdatatype.to_text(t)}" for (o, t, _c, _ttl, _k) in sorted(extra, key=str)[:6]))
    missing = {r for r in inter if r[1] in GLUE_TYPES} - mine
    if missing:
        d.append("additional lacks glue all references give: " +
                 ", ".join(f"{o} {dns.rdatatype.to_text(t)}" for (o, t, _c, _ttl, _k) in sorted(missing, key=str)[:6]))
    return d


def judge(ours, nsd, knot, zone):
    """Returns (passed, reason-lines)."""
    if ours is None:
        return False, ["no answer from edge-agent"]
    if not isinstance(ours, Resp):
        return False, [f"edge-agent answer unparseable: {ours.error}"]
    reasons = []
    matched = False
    for nm, ref in (("NSD", nsd), ("Knot", knot)):
        if ref is None or not isinstance(ref, Resp):
            reasons.append(f"{nm}: no usable reference answer")
            continue
        dd = diff_core(ours, ref, zone)
        if not dd:
            matched = True
        else:
            reasons.append(f"vs {nm}: " + "; ".join(dd))
    if not matched:
        return False, reasons
    add = check_additional(ours, [nsd, knot])
    if add:
        return False, add
    return True, []


# ---------------------------------------------------------------------------------------
# query generation

VARIANTS = OrderedDict([
    # name: (transport, edns payload or None, DO)
    ("udp", ("udp", None, False)),
    ("udp-e1232", ("udp", 1232, False)),
    ("udp-e4096-do", ("udp", 4096, True)),
    ("tcp", ("tcp", None, False)),
    ("tcp-e1232-do", ("tcp", 1232, True)),
    ("udp-e512", ("udp", 512, False)),
])
ROTATION = ["udp", "udp-e1232", "tcp", "udp-e4096-do", "udp", "tcp-e1232-do", "udp-e1232"]

OWNER_TYPES = [T.A, T.AAAA, T.NS, T.SOA, T.MX, T.TXT, T.CNAME, T.ANY, T.DS, T.DNAME, T.SRV, T.PTR,
               T.CAA, T.SSHFP, T.TLSA, T.NAPTR, T.HINFO, T.LOC, T.SVCB, T.HTTPS, 65400, 65401,
               65402, T.RRSIG, T.NSEC, T.DNSKEY]
SMALL_TYPES = [T.A, T.AAAA, T.TXT, T.NS, T.DS, T.ANY, T.CNAME, 65402]


class Query:
    def __init__(self, qname, qtype, variant, rd=False, cd=False, ad=False, qclass=1, ednsopts=b"",
                 payload=None, tag=""):
        self.qname, self.qtype, self.variant = qname, qtype, variant
        self.transport, edns, self.do = VARIANTS[variant] if variant in VARIANTS else variant
        self.edns = payload if payload is not None else edns
        self.rd, self.cd, self.ad, self.qclass, self.ednsopts, self.tag = rd, cd, ad, qclass, ednsopts, tag

    def label(self):
        v = self.variant if isinstance(self.variant, str) else "%s-e%s" % (self.transport, self.edns)
        extra = "".join(f" +{f}" for f, on in (("rd", self.rd), ("cd", self.cd), ("ad", self.ad)) if on)
        cls = "" if self.qclass == 1 else " " + dns.rdataclass.to_text(self.qclass)
        tag = f" [{self.tag}]" if self.tag else ""
        return f"{v:14s} {self.qname}{cls} {dns.rdatatype.to_text(self.qtype)}{extra}{tag}"

    def key(self):
        return (self.qname, self.qtype, self.transport, self.edns, self.do, self.rd, self.cd, self.ad,
                self.qclass, self.ednsopts)

    def wire(self, qid):
        return build_query(self.qname, self.qtype, edns=self.edns, do=self.do, rd=self.rd, cd=self.cd,
                           ad=self.ad, qid=qid, qclass=self.qclass, ednsopts=self.ednsopts)


def mixcase(name, rng):
    out = []
    for ch in name:
        out.append(ch.upper() if ch.isalpha() and rng.random() < 0.5 else ch.lower())
    s = "".join(out)
    if s.lower() == s and any(c.isalpha() for c in s):  # make sure something is upper case
        i = next(i for i, c in enumerate(s) if c.isalpha())
        s = s[:i] + s[i].upper() + s[i + 1:]
    return s


def generate_queries(zone):
    rng = random.Random(20240101)
    origin = zone.origin
    owners = sorted(zone.z.nodes.keys())
    ownertypes = {n: {rds.rdtype for rds in zone.z.nodes[n].rdatasets} for n in owners}
    cuts = [n for n in owners if n != origin and T.NS in ownertypes[n]]
    dnames = [n for n in owners if T.DNAME in ownertypes[n]]

    def below_cut(n):
        return any(n != c and n.is_subdomain(c) for c in cuts)

    ents = set()
    for n in owners:
        p = n.parent()
        while p != origin and p.is_subdomain(origin):
            if p not in zone.z.nodes:
                ents.add(p)
            p = p.parent()
    ents = sorted(ents)

    qs = []
    seen = set()
    counter = [0]

    def add(qname, qtype, variant=None, **kw):
        if variant is None:
            variant = ROTATION[counter[0] % len(ROTATION)]
            counter[0] += 1
        q = Query(str(qname) if not isinstance(qname, str) else qname, qtype, variant, **kw)
        if q.key() in seen:
            return
        seen.add(q.key())
        qs.append(q)

    # 1. every owner x many types (rotating transports); RD/CD on some
    for i, n in enumerate(owners):
        types = list(OWNER_TYPES) + sorted(ownertypes[n] - set(OWNER_TYPES))
        for j, t in enumerate(types):
            add(n, t, rd=((i + j) % 5 == 0), cd=((i + j) % 11 == 0))
    # 2. empty non-terminals
    for n in ents:
        for t in SMALL_TYPES + [T.SOA, T.MX]:
            add(n, t)
    # 3. NX names below and beside every owner / ENT (beside = sibling sorting after it)
    for n in owners + ents:
        add(dns.name.Name((b"nx",) + n.labels), T.A)
        add(dns.name.Name((b"nx",) + n.labels), T.TXT, rd=True)
        add(dns.name.Name((b"a", b"b", b"nx") + n.labels), T.AAAA)
        if n != origin and n.labels[0] != b"*":
            sib = dns.name.Name((n.labels[0] + b"-nx",) + n.labels[1:])
            add(sib, T.A)
            add(sib, T.ANY)
    # 4. wildcard expansions, deeper matches, the literal '*' label
    for n in owners:
        if n.labels[0] == b"*":
            parent = n.parent()
            for lab in ([b"foo"], [b"x", b"y"], [b"EXISTS-NOT"], [b"a", b"*"]):
                cand = dns.name.Name(tuple(lab) + parent.labels)
                for t in [T.A, T.AAAA, T.TXT, T.MX, T.CNAME, T.ANY, T.HINFO, T.NS, 65402]:
                    add(cand, t)
    # 5. below delegations (referrals), occluded names, glue names
    for c in cuts:
        for lab in ([b"host"], [b"x", b"y"], [b"ns1"], [b"occluded"], [b"deep", b"occluded"], [b"ns"]):
            cand = dns.name.Name(tuple(lab) + c.labels)
            for t in [T.A, T.AAAA, T.NS, T.DS, T.TXT, T.ANY, T.SOA]:
                add(cand, t)
    # 6. below DNAMEs
    for dn in dnames:
        for lab in ([b"www"], [b"deep", b"www"], [b"nx"], [b"ns1"], [b"host"], [b"occluded"], [b"a", b"b"]):
            cand = dns.name.Name(tuple(lab) + dn.labels)
            for t in [T.A, T.AAAA, T.TXT, T.ANY, T.NS, T.DNAME, T.CNAME]:
                add(cand, t)
    # 7. mixed-case versions of every owner, ENT and some NX / wildcard / DNAME names
    extra = [dns.name.from_text(x, origin) for x in
             ("nx", "foo.wild", "www.dname", "host.sub", "x.y.nog", "a.b.c.ent", "foo.cwild", "q.e.x.wildent")]
    for n in owners + ents + extra:
        mc = mixcase(n.to_text(), rng)
        for t in (T.A, T.ANY, T.NS) if n in owners else (T.A, T.TXT):
            add(mc, t)
        add(mc, T.SOA, "tcp")
    # 8. full transport matrix for the interesting cases (truncation, ANY, referrals, CNAME)
    interesting = [
        ("example.test.", [T.ANY, T.NS, T.MX, T.SOA, T.TXT, T.CAA, T.DNSKEY, T.DS]),
        ("many.example.test.", [T.A, T.ANY]), ("long.example.test.", [T.TXT, T.ANY]),
        ("huge.example.test.", [T.TXT, T.ANY]), ("three.example.test.", [T.ANY]),
        ("www.example.test.", [T.ANY, T.A, T.HTTPS]), ("sub.example.test.", [T.NS, T.DS, T.A, T.ANY]),
        ("host.sub.example.test.", [T.A]), ("mix.example.test.", [T.NS, T.A]),
        ("nog.example.test.", [T.NS, T.A]), ("other.example.test.", [T.A]), ("foo.wild.example.test.", [T.ANY, T.A]),
        ("foo.multi.example.test.", [T.ANY]), ("c1.example.test.", [T.A, T.ANY]), ("cmany.example.test.", [T.A]),
        ("loop1.example.test.", [T.A]), ("self.example.test.", [T.A]), ("cnx.example.test.", [T.A]),
        ("www.dname.example.test.", [T.A]), ("x.dnameout.example.test.", [T.A]), ("cout.example.test.", [T.A]),
        ("nx.example.test.", [T.A]), ("_sip._tcp.example.test.", [T.SRV]), ("svc.example.test.", [T.SVCB]),
        ("mail.example.test.", [T.A]), ("unk.example.test.", [65400, T.ANY]),
    ]
    for name, types in interesting:
        for t in types:
            for v in VARIANTS:
                add(name, t, v, tag="matrix")
            add(name, t, "udp", rd=True, cd=True, tag="matrix")
    # 9. odd EDNS sizes / unknown option / AD bit / classes / out-of-zone names
    for name, t in (("long.example.test.", T.TXT), ("many.example.test.", T.A), ("www.example.test.", T.A),
                    ("huge.example.test.", T.TXT), ("example.test.", T.ANY)):
        for size in (0, 100, 511, 513, 1400, 65535):
            add(name, t, ("udp", size, False), tag="edns-size")
        add(name, t, ("udp", 1232, False), ednsopts=struct.pack("!HH", 65001, 4) + b"abcd", tag="edns-unknown-opt")
        add(name, t, ("udp", 1232, True), ednsopts=struct.pack("!HH", 10, 8) + b"\x01" * 8, tag="edns-cookie")
        add(name, t, "udp", ad=True, tag="ad-bit")
    for name in ("example.test.", "www.example.test.", "nx.example.test."):
        for cls in (3, 4, 255, 254):  # CH, HS, ANY, NONE
            add(name, T.A if name != "example.test." else T.SOA, "udp", qclass=cls, tag="class")
            add(name, T.ANY, "udp-e1232", qclass=cls, tag="class")
    for name in (".", "test.", "org.", "xexample.test.", "example.test.example.test.", "eXample.TEST.", "EXAMPLE.TEST."):
        for t in (T.SOA, T.A, T.NS, T.ANY):
            add(name, t, tag="zone-edge")
            add(name, t, "tcp", tag="zone-edge")
    # meta types (answered like other types, or refused / notimp / formerr)
    for t in (T.AXFR, T.IXFR, T.MAILB, T.MAILA, 0, OPT, T.TSIG, T.TKEY, T.NULL, T.NSEC3, T.NSEC3PARAM, T.CDS,
              T.CDNSKEY, T.ZONEMD, 128, 65535):
        add("example.test.", t, "udp", tag="meta-type")
        add("www.example.test.", t, "udp-e1232", tag="meta-type")
    return qs


# ---------------------------------------------------------------------------------------
# malformed packets


def hdr(qid=0x1234, flags=0x0000, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def malformed_cases():
    www = name_wire("www.example.test.")
    q = www + struct.pack("!HH", T.A, 1)
    apex = name_wire("example.test.")
    soa_rr = apex + struct.pack("!HHIH", T.SOA, 1, 3600, 22) + b"\x00\x00" + struct.pack("!IIIII", 1, 2, 3, 4, 5)
    a_rr = www + struct.pack("!HHIH", T.A, 1, 60, 4) + bytes([192, 0, 2, 1])
    cases = [
        ("empty datagram", b""),
        ("truncated header (5 bytes)", hdr()[:5]),
        ("header only, QDCOUNT 1", hdr()),
        ("QDCOUNT 0", hdr(qd=0)),
        ("QDCOUNT 0 with EDNS", hdr(qd=0, ar=1) + opt_rr(1232)),
        ("QDCOUNT 2", hdr(qd=2) + q + name_wire("mail.example.test.") + struct.pack("!HH", T.A, 1)),
        ("QDCOUNT 2 same question", hdr(qd=2) + q + q),
        ("QDCOUNT 2, only one present", hdr(qd=2) + q),
        ("compression pointer loop", hdr() + b"\xc0\x0c" + struct.pack("!HH", T.A, 1)),
        ("compression pointer 2-loop", hdr() + b"\x01a\xc0\x0e\xc0\x0c" + struct.pack("!HH", T.A, 1)),
        ("forward compression pointer", hdr() + b"\x03www\xc0\x16" + struct.pack("!HH", T.A, 1)
         + name_wire("example.test.")),
        ("pointer into header", hdr() + b"\xc0\x02" + struct.pack("!HH", T.A, 1)),
        ("pointer out of packet", hdr() + b"\x03www\xc0\xff" + struct.pack("!HH", T.A, 1)),
        ("backward pointer in question (valid-looking)", hdr() + b"\x03www\xc0\x10" + struct.pack("!HH", T.A, 1)),
        ("truncated question name", hdr() + b"\x03www\x07exam"),
        ("truncated question, no qtype/qclass", hdr() + www),
        ("truncated question, half qtype", hdr() + www + b"\x00"),
        ("label length 64", hdr() + b"\x40" + b"a" * 64 + apex + struct.pack("!HH", T.A, 1)),
        ("label type 0x80", hdr() + b"\x80abc" + apex + struct.pack("!HH", T.A, 1)),
        ("name longer than 255", hdr() + (b"\x3f" + b"a" * 63) * 4 + apex + struct.pack("!HH", T.A, 1)),
        ("QR=1 query", hdr(flags=0x8000) + q),
        ("QR=1 query with EDNS", hdr(flags=0x8000, ar=1) + q + opt_rr(1232)),
        ("ANCOUNT 1 query", hdr(an=1) + q + a_rr),
        ("ANCOUNT 1 but no record", hdr(an=1) + q),
        ("NSCOUNT 1 query", hdr(ns=1) + q + soa_rr),
        ("ARCOUNT 1 but nothing", hdr(ar=1) + q),
        ("ARCOUNT 1 with A record (no OPT)", hdr(ar=1) + q + a_rr),
        ("two OPT records", hdr(ar=2) + q + opt_rr(1232) + opt_rr(1232)),
        ("EDNS version 1", hdr(ar=1) + q + opt_rr(1232, version=1)),
        ("EDNS version 1, DO", hdr(ar=1) + q + opt_rr(1232, version=1, do=True)),
        ("EDNS version 255", hdr(ar=1) + q + opt_rr(1232, version=255)),
        ("OPT owner not root", hdr(ar=1) + q + opt_rr(1232, owner=www)),
        ("OPT in answer section", hdr(an=1) + q + opt_rr(1232)),
        ("OPT with ext-rcode set", hdr(ar=1) + q + opt_rr(1232, ext_rcode=1)),
        ("OPT option length overruns RDATA", hdr(ar=1) + q + b"\x00" + struct.pack("!HHIH", OPT, 1232, 0, 4)
         + struct.pack("!HH", 10, 40)),
        ("OPT RDLEN overruns packet", hdr(ar=1) + q + b"\x00" + struct.pack("!HHIH", OPT, 1232, 0, 40)),
        ("OPT cookie bad length (5)", hdr(ar=1) + q + opt_rr(1232, opts=struct.pack("!HH", 10, 5) + b"12345")),
        ("trailing garbage", hdr() + q + b"\xde\xad\xbe\xef"),
        ("trailing garbage after OPT", hdr(ar=1) + q + opt_rr(1232) + b"\xde\xad"),
        ("TC=1 in query", hdr(flags=0x0200) + q),
        ("Z bit in query", hdr(flags=0x0040) + q),
        ("nonzero rcode in query", hdr(flags=0x0005) + q),
        ("qclass 0", hdr() + www + struct.pack("!HH", T.A, 0)),
        ("qtype 0", hdr() + www + struct.pack("!HH", 0, 1)),
        ("qtype OPT", hdr() + www + struct.pack("!HH", OPT, 1)),
        ("AXFR over UDP", hdr() + apex + struct.pack("!HH", T.AXFR, 1)),
        ("IXFR over UDP no SOA", hdr() + apex + struct.pack("!HH", T.IXFR, 1)),
    ]
    for op in range(1, 16):
        cases.append((f"opcode {op}", hdr(flags=op << 11) + q))
    cases.append(("opcode 4 NOTIFY for zone with SOA", hdr(flags=(4 << 11) | 0x0400, an=1)
                  + apex + struct.pack("!HH", T.SOA, 1) + soa_rr))
    cases.append(("opcode 5 UPDATE for zone", hdr(flags=5 << 11) + apex + struct.pack("!HH", T.SOA, 1)))
    out = [(name, "udp", pkt) for name, pkt in cases]
    # some over TCP too (a well-formed length prefix around a bad message, and bad framing)
    tcp_pick = {"QDCOUNT 0", "QDCOUNT 2", "compression pointer loop", "pointer out of packet",
                "truncated question name", "label length 64", "QR=1 query", "two OPT records", "EDNS version 1",
                "opcode 2", "opcode 5", "trailing garbage", "OPT owner not root", "ANCOUNT 1 query",
                "header only, QDCOUNT 1", "AXFR over UDP"}
    for name, pkt in cases:
        if name in tcp_pick:
            out.append((name + (" (TCP: AXFR)" if name == "AXFR over UDP" else ""), "tcp", pkt))
    out.append(("TCP zero-length message", "tcp-raw", b"\x00\x00"))
    out.append(("TCP length says 100, 20 bytes sent", "tcp-raw", b"\x00\x64" + (hdr() + q)[:20]))
    out.append(("TCP truncated header (5 bytes)", "tcp-raw", b"\x00\x05" + hdr()[:5]))
    return out


def malformed_rcode(r):
    if r is None:
        return "silence"
    if len(r) < 4:
        return "short(%d)" % len(r)
    rc = r[3] & 0x0F
    p = parse(r)
    if isinstance(p, Resp):
        rc = p.rcode
    try:
        return dns.rcode.to_text(rc)
    except Exception:
        return str(rc)


# ---------------------------------------------------------------------------------------
# main


def ask(port, q, timeout=QUERY_TIMEOUT, tries=2):
    qid = random.randrange(1, 65536)
    wire = q.wire(qid)
    if q.transport == "udp":
        return parse(send_udp(port, wire, timeout, tries=tries, expect_id=qid))
    r = parse(send_tcp(port, wire, timeout * 2))
    if isinstance(r, Resp) and r.id != qid:
        r.records_ok, r.error = False, f"response ID {r.id} != query ID {qid}"
    return r


def ask_malformed(port, transport, pkt):
    if transport == "udp":
        return send_udp(port, pkt, MALFORMED_TIMEOUT)
    return send_tcp(port, pkt, MALFORMED_TIMEOUT, raw=(transport == "tcp-raw"))


def find_agent(arg):
    if arg == "none":
        return None
    if arg:
        return os.path.abspath(arg)
    for p in ("target/release/edge-agent", "target/debug/edge-agent"):
        full = os.path.join(REPO, p)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return os.path.join(REPO, "target/release/edge-agent")


def check_tools():
    missing = [t for t in ("nsd", "knotd") if shutil.which(t) is None]
    if missing:
        log(f"run.py: missing {', '.join(missing)}: apt-get install -y nsd knot knot-dnsutils dnsutils python3-dnspython")
        sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default=None, help="edge-agent binary, or 'none' for NSD vs Knot only "
                    "(default: target/release/edge-agent, then target/debug/edge-agent)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every test and every NSD/Knot difference")
    ap.add_argument("--only", default=None, help="run only tests whose label contains SUBSTRING (case-insensitive)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    args = ap.parse_args()

    check_tools()
    zone = Zone(ZONE_FILE)
    agent_bin = find_agent(args.agent)
    queries = generate_queries(zone)
    mal = malformed_cases()
    if args.only:
        s = args.only.lower()
        queries = [q for q in queries if s in q.label().lower()]
        mal = [m for m in mal if s in f"malformed {m[1]} {m[0]}".lower()]

    tmp = tempfile.mkdtemp(prefix="edgedns-diff-")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)  # run the finally below: stop our daemons

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    daemons = []
    passed = failed = compared = 0
    nk_diff = Counter()
    nk_examples = OrderedDict()
    try:
        started = {}
        for nm, mk in (("nsd", nsd_daemon), ("knot", knot_daemon)):
            dmn, err = start_with_retries(mk, tmp, nm)
            if dmn is None:
                log(f"ERROR: {err}")
                log("differential: 0 passed, 1 failed")
                return 1
            daemons.append(dmn)
            started[nm] = dmn
        agent = None
        if agent_bin is not None:
            if not os.path.isfile(agent_bin):
                log(f"ERROR: edge-agent binary not found: {agent_bin} (build it, or use --agent none)")
                log("differential: 0 passed, 1 failed")
                return 1
            agent = agent_daemon(tmp, free_port(), agent_bin)
            agent.start()
            daemons.append(agent)
            ready = agent.wait_ready(accept_any_answer=True)
            if not ready:
                st = "still running" if agent.alive() else f"exited with status {agent.proc.returncode}"
                log(f"ERROR: edge-agent ({agent_bin} --config {agent.workdir}/edge-agent.toml) did not answer "
                    f"SOA for {ZONE_NAME} on 127.0.0.1:{agent.port} ({st}); log:\n{agent.log_tail()}")
                log("differential: 0 passed, 1 failed")
                return 1
            if ready == "answers":
                log(f"WARNING: edge-agent answers, but not SOA {ZONE_NAME} with NOERROR: is the zone loaded? "
                    f"Comparing anyway. Log:\n{agent.log_tail()}")
        nsd, knot = started["nsd"], started["knot"]
        log(f"NSD on 127.0.0.1:{nsd.port}, Knot on 127.0.0.1:{knot.port}"
            + (f", edge-agent on 127.0.0.1:{agent.port} ({agent_bin})" if agent else ", no edge-agent (--agent none)"))
        log(f"{len(queries)} queries, {len(mal)} malformed packets")

        # ---- well-formed queries
        agent_gone, silent_run = None, 0
        for q in queries:
            rn, rk = ask(nsd.port, q), ask(knot.port, q)
            lab = q.label()
            # how NSD and Knot differ (informative: what the normaliser must tolerate)
            if isinstance(rn, Resp) and isinstance(rk, Resp):
                dd = diff_core(rk, rn, zone)
                if not (rn.tc or rk.tc) and rn.records_ok and rk.records_ok \
                        and rn.records("additional") != rk.records("additional"):
                    dd.append("additional section")
                if dd:
                    cat = "; ".join("question differs" if x.startswith("question ") else x.split(":")[0].split(" (")[0]
                                    for x in dd)
                    nk_diff[cat] += 1
                    nk_examples.setdefault(cat, []).append((lab, rn, rk))
            if agent is None:
                ok = isinstance(rn, Resp) and isinstance(rk, Resp)
                why = [] if ok else ["a reference server gave no usable answer"]
                if ok:
                    compared += 1
                ro = None
            elif agent_gone:
                ro, ok, why = None, False, ["edge-agent gone (see above)"]
            else:
                ro = ask(agent.port, q, *((0.3, 1) if silent_run >= 10 else (QUERY_TIMEOUT, 2)))
                compared += 1
                ok, why = judge(ro, rn, rk, zone)
                silent_run = silent_run + 1 if ro is None else 0
                if not agent.alive():
                    agent_gone = f"edge-agent died (status {agent.proc.returncode}); log:\n{agent.log_tail()}"
                elif silent_run >= 50:
                    agent_gone = "edge-agent gave no answer to 50 queries in a row: not sending it more"
                if agent_gone:
                    log(f"ERROR {agent_gone}")
            if ok:
                passed += 1
                if args.verbose:
                    log(f"ok    {lab}")
            else:
                failed += 1
                log(f"FAIL  {lab}")
                if why == ["edge-agent gone (see above)"]:
                    continue
                for w in why:
                    log(f"      {w}")
                if failed > MAX_DETAILED and not args.verbose:
                    if failed == MAX_DETAILED + 1:
                        log(f"      (more than {MAX_DETAILED} failures: only labels from here on; --verbose for all)")
                    continue
                if agent is not None:
                    log("    -- edge-agent:\n" + describe(ro, "       "))
                log("    -- NSD:\n" + describe(rn, "       "))
                log("    -- Knot:\n" + describe(rk, "       "))

        # ---- malformed packets
        mal_table = []
        for name, transport, pkt in mal:
            lab = f"malformed {transport} {name}"
            rn = malformed_rcode(ask_malformed(nsd.port, transport, pkt))
            rk = malformed_rcode(ask_malformed(knot.port, transport, pkt))
            if agent is None:
                mal_table.append((lab, rn, rk, None))
                ok = True
                if not (nsd.alive() and knot.alive()):
                    ok = False
            else:
                ro = malformed_rcode(ask_malformed(agent.port, transport, pkt))
                mal_table.append((lab, rn, rk, ro))
                ok = ro in (rn, rk)
                if not agent.alive():
                    ok = False
            if ok:
                passed += 1
                if args.verbose:
                    log(f"ok    {lab}: NSD {rn}, Knot {rk}" + ("" if agent is None else f", edge-agent {ro}"))
            else:
                failed += 1
                log(f"FAIL  {lab}: NSD {rn}, Knot {rk}" + ("" if agent is None else f", edge-agent {ro}")
                    + ("" if agent is None or agent.alive() else " (edge-agent died)"))

        # ---- health after the run
        for dmn in daemons:
            if not dmn.alive():
                log(f"FAIL  {dmn.name} is no longer running after the test; log:\n{dmn.log_tail()}")
                failed += 1

        # ---- NSD vs Knot report
        total_nk = sum(nk_diff.values())
        log(f"NSD vs Knot: {total_nk} of {len(queries)} well-formed queries differ after normalisation"
            + (" (categories: --agent none or --verbose)" if agent is not None and not args.verbose else
               " (values: Knot's first, then NSD's)"))
        for cat, n in (nk_diff.most_common() if agent is None or args.verbose else []):
            ex = nk_examples[cat]
            log(f"  {n:4d}  {cat}")
            for i, (lab, rn, rk) in enumerate(ex[: (len(ex) if args.verbose else 3)]):
                log(f"          e.g. {lab}")
                if args.verbose and i < 3:
                    log("          -- NSD:\n" + describe(rn, "             "))
                    log("          -- Knot:\n" + describe(rk, "             "))
        if agent is None or args.verbose:
            log("malformed packets (rcode or silence): NSD / Knot" + ("" if agent is None else " / edge-agent"))
            for lab, rn, rk, ro in mal_table:
                mark = "" if rn == rk else "   <- differ"
                log(f"  {lab:60s} {rn:9s} {rk:9s}" + ("" if ro is None else f" {ro}") + mark)
    finally:
        for dmn in reversed(daemons):
            dmn.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    log(f"queries compared: {compared}")
    if compared < MIN_QUERIES and not args.only:
        log(f"FAIL  only {compared} queries compared (minimum {MIN_QUERIES})")
        failed += 1
    log(f"differential: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
