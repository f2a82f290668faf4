#!/usr/bin/env python3
# requirements (Debian): apt-get install -y knot python3   (Knot 3.2 `knotd`, `knotc`)
"""A stand-in for edge-agent that tests the harness itself: Knot as the secondary.

    fake_agent.py --config FILE          translate the edge-agent TOML to a Knot config and
                                         exec knotd (so the PID run.py started is knotd's)
    fake_agent.py zones --config FILE    `knotc zone-status` (what `edge-agent zones` shows)

Only the keys of the issue 3 contract are read: [server].listen, [store].path, [[tsig]],
[[zone]] name/masters/notify_from/allow_transfer/notify.  `run.py --agent fake` uses it;
every scenario must then pass except what Knot 3.2 is known to get wrong (it accepts a
transfer whose closing SOA differs from the opening one: `malformed` fails on that).
"""

import os
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.stderr.write("fake_agent.py: needs Python 3.11 (tomllib)\n")
    sys.exit(2)


def addr(text):
    """"127.0.0.1:53" -> ("127.0.0.1", "53")"""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), port


def knot_conf(cfg, workdir):
    store = cfg.get("store", {}).get("path") or os.path.join(workdir, "store")
    os.makedirs(store, exist_ok=True)
    out = ["server:", f'    rundir: "{store}"', f'    pidfile: "{store}/knot.pid"']
    for lst in cfg["server"]["listen"]:
        h, p = addr(lst)
        out.append(f"    listen: {h}@{p}")
    out += ["    udp-workers: 1", "    tcp-workers: 1", "    background-workers: 1",
            "control:", f'    listen: "{store}/knot.sock"',
            "database:", f'    storage: "{store}"',
            "log:", "  - target: stderr", "    any: debug"]
    keys = cfg.get("tsig", [])
    if keys:
        out.append("key:")
        for k in keys:
            out += [f"  - id: {k['name']}", f"    algorithm: {k.get('algorithm', 'hmac-sha256')}",
                    f"    secret: {k['secret']}"]
    remotes, acls, zones = [], [], []
    for zi, z in enumerate(cfg.get("zone", [])):
        mids, nids, aids = [], [], []
        for i, m in enumerate(z.get("masters", [])):
            h, p = addr(m["address"])
            rid = f"z{zi}m{i}"
            remotes += [f"  - id: {rid}", f"    address: {h}@{p}"] + ([f"    key: {m['tsig']}"] if m.get("tsig") else [])
            mids.append(rid)
            aid = f"z{zi}notify{i}"
            acls += [f"  - id: {aid}", f"    address: {h}", "    action: notify"] + \
                    ([f"    key: {m['tsig']}"] if m.get("tsig") else [])
            aids.append(aid)
        for i, a in enumerate(z.get("notify_from", [])):
            aid = f"z{zi}notifyfrom{i}"
            acls += [f"  - id: {aid}", f"    address: {a}", "    action: notify"]
            aids.append(aid)
        for i, t in enumerate(z.get("allow_transfer", [])):
            aid = f"z{zi}xfr{i}"
            acls += [f"  - id: {aid}", f"    address: {t['address']}", "    action: transfer"] + \
                    ([f"    key: {t['tsig']}"] if t.get("tsig") else [])
            aids.append(aid)
        for i, n in enumerate(z.get("notify", [])):
            h, p = addr(n)
            rid = f"z{zi}n{i}"
            remotes += [f"  - id: {rid}", f"    address: {h}@{p}"]
            nids.append(rid)
        zones += [f"  - domain: {z['name']}", f'    file: "{store}/zone{zi}.zone"']
        if mids:
            zones.append(f"    master: [{', '.join(mids)}]")
        if nids:
            zones.append(f"    notify: [{', '.join(nids)}]")
        if aids:
            zones.append(f"    acl: [{', '.join(aids)}]")
    if remotes:
        out += ["remote:"] + remotes
    if acls:
        out += ["acl:"] + acls
    out += ["template:", "  - id: default", f'    storage: "{store}"', "    zonefile-sync: -1",
            "    zonefile-load: none", "    journal-content: all", "    refresh-min-interval: 2",
            "    retry-min-interval: 1", "    expire-min-interval: 3", "zone:"] + zones
    return "\n".join(out) + "\n", store


def main(argv):
    sub = None
    if argv and argv[0] == "zones":
        sub, argv = "zones", argv[1:]
    if len(argv) != 2 or argv[0] not in ("--config", "-c"):
        sys.stderr.write("usage: fake_agent.py [zones] --config FILE\n")
        return 2
    path = argv[1]
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    text, store = knot_conf(cfg, os.path.dirname(os.path.abspath(path)))
    conf = os.path.join(store, "fake-knot.conf")
    if sub == "zones":
        os.execvp("knotc", ["knotc", "-c", conf, "-s", f"{store}/knot.sock", "-t", "3", "zone-status"])
    with open(conf, "w") as f:
        f.write(text)
    sys.stdout.flush()
    os.execvp("knotd", ["knotd", "-c", conf])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
