#!/usr/bin/env python3
# requirements (Debian): apt-get install -y nsd knot python3-dnspython
"""Stand-in for edge-agent, to test the harness itself (not the server).

    run.py --agent tests/differential/fake_agent.py                       # Knot as "edge-agent"
    FAKE_BACKEND=nsd run.py --agent tests/differential/fake_agent.py      # NSD as "edge-agent"
    FAKE_MUTATE=1 run.py --agent tests/differential/fake_agent.py         # Knot behind a proxy that breaks answers

Takes `--config FILE` like edge-agent, serves the first [[zone]] on the first
[server].listen address with NSD or Knot.  With NSD or Knot behind it every test must pass
(the normaliser gives no false failures).  FAKE_MUTATE=1 puts a proxy in front that clears
AA on TXT answers, lower-cases the question of names containing "wild", adds 1 to the TTL
of answers to MX queries and is silent for opcode 5: those tests, and only those, must fail.
"""

import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (re-executes under /usr/bin/python3 if dnspython is missing)

try:
    import tomllib
except ImportError:  # python < 3.11
    tomllib = None


def read_config(path):
    text = open(path, "rb").read()
    if tomllib:
        cfg = tomllib.loads(text.decode())
        listen = cfg["server"]["listen"][0]
        zone = cfg["zone"][0]
        return listen, zone["name"], zone["file"]
    listen = name = zfile = None  # minimal fallback for the file run.py writes
    for line in text.decode().splitlines():
        line = line.strip()
        if line.startswith("listen"):
            listen = line.split('"')[1]
        elif line.startswith("name"):
            name = line.split('"')[1]
        elif line.startswith("file"):
            zfile = line.split('"')[1]
    return listen, name, zfile


def mutate(resp):
    """Deliberate mistakes (FAKE_MUTATE=1)."""
    if resp is None or len(resp) < 12:
        return resp
    b = bytearray(resp)
    try:
        name, off = run.read_name(bytes(b), 12)
        qtype = struct.unpack("!H", b[off:off + 2])[0]
    except Exception:
        return resp
    if qtype == 16:
        b[2] &= ~0x04  # clear AA
    if "wild" in name:
        for i in range(12, off):
            if 65 <= b[i] <= 90:
                b[i] += 32
    if qtype == 15 and struct.unpack("!H", b[6:8])[0] > 0:
        # first answer record: TTL + 1
        try:
            _n, roff = run.read_name(bytes(b), off + 4)
            ttl = struct.unpack("!I", b[roff + 4:roff + 8])[0]
            b[roff + 4:roff + 8] = struct.pack("!I", ttl + 1)
        except Exception:
            pass
    return bytes(b)


def proxy(listen_port, backend_port, stop):
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.bind(("127.0.0.1", listen_port))
    us.settimeout(0.2)
    ts = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ts.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ts.bind(("127.0.0.1", listen_port))
    ts.listen(64)
    ts.settimeout(0.2)

    def silent(pkt):
        return len(pkt) >= 3 and ((pkt[2] >> 3) & 0xF) == 5

    def udp_loop():
        while not stop.is_set():
            try:
                pkt, peer = us.recvfrom(65535)
            except socket.timeout:
                continue
            if silent(pkt):
                continue
            r = run.send_udp(backend_port, pkt, 0.5)
            if r is not None:
                us.sendto(mutate(r), peer)

    def tcp_conn(c):
        c.settimeout(2)
        try:
            while True:
                h = run.recv_exact(c, 2)
                if h is None:
                    return
                pkt = run.recv_exact(c, struct.unpack("!H", h)[0])
                if pkt is None or silent(pkt):
                    return
                r = run.send_tcp(backend_port, pkt, 1.0)
                if r is None:
                    return
                r = mutate(r)
                c.sendall(struct.pack("!H", len(r)) + r)
        except OSError:
            pass
        finally:
            c.close()

    def tcp_loop():
        while not stop.is_set():
            try:
                c, _ = ts.accept()
            except socket.timeout:
                continue
            threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()

    for f in (udp_loop, tcp_loop):
        threading.Thread(target=f, daemon=True).start()


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--config":
        sys.stderr.write("usage: fake_agent.py --config FILE\n")
        return 2
    listen, zname, zfile = read_config(sys.argv[2])
    host, port = listen.rsplit(":", 1)
    port = int(port)
    run.ZONE_NAME, run.ZONE_FILE = zname, zfile
    mut = os.environ.get("FAKE_MUTATE") == "1"
    backend = os.environ.get("FAKE_BACKEND", "knot")
    make = run.nsd_daemon if backend == "nsd" else run.knot_daemon
    tmp = tempfile.mkdtemp(prefix="fake-agent-")
    d = make(tmp, run.free_port() if mut else port)
    d.start()
    stop = threading.Event()

    def term(*_a):
        stop.set()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    if not d.wait_ready():
        sys.stderr.write("fake_agent: backend did not start\n" + d.log_tail() + "\n")
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    if mut:
        proxy(port, d.port, stop)
    print(f"fake_agent: {backend} on {d.port}" + (f", mutating proxy on {port}" if mut else ""), flush=True)
    while not stop.is_set() and d.alive():
        stop.wait(0.5)
    d.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
