#!/usr/bin/env python3
"""The soak's log writer (benches/soak.sh): replays a `logwarden demo --generate` compose corpus
as the stack's per-service files, at a steady rate, with every timestamp rewritten to the wall
clock, rotating the files with the real logrotate, and counting the events it writes.

    writer.py POOL --dump DIR               write the pool's entries once into DIR (original
                                            times) and print their counts per service as JSON:
                                            the script backfills DIR to check this framing
    writer.py POOL --dir LOGS --rate N --rotate-seconds S --logrotate-conf F --state F
              --totals F [--markers F --marker-seconds S --api http://127.0.0.1:PORT]

An *entry* is one event: a PostgreSQL line with the lines that continue it (they do not start with
its prefix's time), or one line of the other files. Each entry is written whole (one write() per
file per batch), so the framing of the files does not depend on the timing. The rate counts
entries (events) per second. Rotation: every S seconds logrotate runs (`-f`); while it runs the
files rotated by rename keep being written through their old descriptors and are reopened after
it, as an application's postrotate signal would do; the copytruncate file's entries are held until
logrotate is done, since bytes written between logrotate's copy and its truncation are lost by
copytruncate itself (not by the reader). SIGTERM/SIGINT: finish the batch, write the totals, exit.
Markers: every --marker-seconds a pino line `soak-marker-N` goes to app.log; a thread asks the
agent's /api/v1/count for it until it is found and appends `n,written_unix,latency_ms` to --markers.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

# container (compose prefix) -> (file name, service)
FILES = {
    "newsletter-app-1": ("app.log", "app"),
    "newsletter-worker-1": ("worker.log", "worker"),
    "newsletter-postgres-1": ("postgresql.log", "postgres"),
    "newsletter-redis-1": ("redis.log", "redis"),
    "kernel": ("kern.log", "kernel"),
}
COPYTRUNCATE = "worker.log"  # must match the logrotate config soak.sh writes

PG_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
PINO_TS = re.compile(r'"time":\d+')
REDIS_TS = re.compile(r"^(\d+:[A-Z] )\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3}")
REDIS_EPOCH = re.compile(r"\((\d{10})\)")
PG_CONT = re.compile(r"^\S+ \S+ \S+ \[\d+\] (?:\S+ )?(?:DETAIL|HINT|STATEMENT|CONTEXT|QUERY|LOCATION):")
SYSLOG_TS = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def load_pool(path):
    """[(file, service, parts)]: the entry's text is parts joined, where a part is text or a
    1-tuple naming the kind of time to put there ("ms", "s", "pg", "redis", "syslog")."""
    entries = []
    with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
        for raw in f:
            name, sep, text = raw.partition(" | ")
            if not sep:
                continue
            file, service = FILES[name.strip()]
            if service == "postgres" and entries and entries[-1][1] == "postgres" and (
                    not PG_TS.match(text) or PG_CONT.match(text)):
                # a line continuing the previous PostgreSQL entry, as the parser frames it
                e = entries[-1]
                entries[-1] = (e[0], e[1], e[2] + split_time(service, text))
                continue
            entries.append((file, service, split_time(service, text)))
    return entries


def split_time(service, text):
    """(head, (kind,), tail) around the line's time, or (text,) when it has none."""
    if service in ("app", "worker"):
        m = PINO_TS.search(text)
        if m:
            return (text[: m.start()] + '"time":', ("ms",), text[m.end():])
    elif service == "postgres":
        if PG_TS.match(text):
            return ("", ("pg",), text[23:])
    elif service == "redis":
        m = REDIS_TS.match(text)
        if m:
            return (m.group(1), ("redis",), text[m.end():])
        m = REDIS_EPOCH.search(text)
        if m:
            return (text[: m.start(1)], ("s",), text[m.end(1):])
    elif service == "kernel":
        m = SYSLOG_TS.match(text)
        if m:
            return ("", ("syslog",), text[m.end():])
    return (text,)


def times(now):
    t = time.gmtime(now)
    ms = int(now * 1000) % 1000
    return {
        "ms": str(int(now * 1000)),
        "s": str(int(now)),
        "pg": time.strftime("%Y-%m-%d %H:%M:%S", t) + ".%03d" % ms,
        "redis": "%02d %s %d %s.%03d" % (t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year,
                                         time.strftime("%H:%M:%S", t), ms),
        "syslog": "%s %2d %s" % (MONTHS[t.tm_mon - 1], t.tm_mday, time.strftime("%H:%M:%S", t)),
    }


def render(entry, ts):
    parts = entry[2]
    return "".join(p if p.__class__ is str else ts[p[0]] for p in parts)


def dump(entries, out):
    os.makedirs(out, exist_ok=True)
    fds = {}
    counts = {}
    for e in entries:
        fd = fds.get(e[0])
        if fd is None:
            fd = fds[e[0]] = open(os.path.join(out, e[0]), "w", encoding="utf-8", errors="surrogateescape")
        fd.write(render(e, {"ms": "1795874400000", "s": "1795874400", "pg": "2026-11-28 14:00:00.000",
                            "redis": "28 Nov 2026 14:00:00.000", "syslog": "Nov 28 14:00:00"}))
        counts[e[1]] = counts.get(e[1], 0) + 1
    for fd in fds.values():
        fd.close()
    json.dump(counts, sys.stdout, sort_keys=True)
    print()


class Prober(threading.Thread):
    """Times marker lines from their write to the agent's answer that it holds them."""

    def __init__(self, api, out):
        super().__init__(daemon=True)
        self.api, self.out = api, out
        self.cv = threading.Condition()
        self.pending = []

    def add(self, n, written):
        with self.cv:
            self.pending.append((n, written))
            self.cv.notify()

    def run(self):
        while True:
            with self.cv:
                while not self.pending:
                    self.cv.wait()
                n, written = self.pending.pop(0)
            url = "%s/api/v1/count?%s" % (self.api, urllib.parse.urlencode({"q": '"soak-marker-%06d"' % n}))
            found = None
            while time.time() - written < 120:
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        if json.load(r).get("count", 0) >= 1:
                            found = time.time()
                            break
                except Exception:
                    pass
                time.sleep(0.01)
            lat = "" if found is None else "%.1f" % ((found - written) * 1000)
            with open(self.out, "a") as f:
                f.write("%d,%.3f,%s\n" % (n, written, lat))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pool")
    ap.add_argument("--dump")
    ap.add_argument("--dir")
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--rotate-seconds", type=float, default=60)
    ap.add_argument("--logrotate-conf")
    ap.add_argument("--state")
    ap.add_argument("--totals")
    ap.add_argument("--progress")
    ap.add_argument("--markers")
    ap.add_argument("--marker-seconds", type=float, default=10)
    ap.add_argument("--api")
    a = ap.parse_args()

    entries = load_pool(a.pool)
    if not entries:
        sys.exit("writer: the pool %s holds no entries" % a.pool)
    if a.dump:
        dump(entries, a.dump)
        return

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def open_file(name):
        return os.open(os.path.join(a.dir, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    names = sorted({v[0] for v in FILES.values()})
    fds = {n: open_file(n) for n in names}
    counts = {v[1]: 0 for v in FILES.values()}
    prober = None
    if a.markers and a.api:
        prober = Prober(a.api, a.markers)
        prober.start()

    start = time.time()
    written = 0  # entries, markers included
    i = 0
    rotation = None  # the running logrotate
    held = []  # the copytruncate file's entries while logrotate runs
    rotations = 0
    rotate_failures = 0
    next_rotate = start + a.rotate_seconds
    next_marker = start + a.marker_seconds
    marker_n = 0
    last_progress = 0

    def finish_rotation():
        nonlocal rotation, rotations, rotate_failures, held
        rc = rotation.wait()
        rotation = None
        if rc != 0:
            rotate_failures += 1
            print("writer: logrotate exited %d" % rc, file=sys.stderr)
        rotations += 1
        for n in names:
            if n != COPYTRUNCATE:
                os.close(fds[n])
                fds[n] = open_file(n)
        if held:
            os.write(fds[COPYTRUNCATE], "".join(held).encode("utf-8", "surrogateescape"))
            held = []

    while not stop.is_set():
        now = time.time()
        if rotation is not None and rotation.poll() is not None:
            finish_rotation()
        if rotation is None and a.logrotate_conf and now >= next_rotate:
            next_rotate += a.rotate_seconds
            rotation = subprocess.Popen(["logrotate", "-f", "-s", a.state, a.logrotate_conf])
        due = int((now - start) * a.rate) - written
        if due > 0:
            ts = times(now)
            out = {}
            for _ in range(due):
                e = entries[i]
                i = (i + 1) % len(entries)
                out.setdefault(e[0], []).append(render(e, ts))
                counts[e[1]] += 1
            if prober is not None and now >= next_marker:
                next_marker += a.marker_seconds
                marker_n += 1
                out.setdefault("app.log", []).append(
                    '{"level":30,"time":%s,"pid":1,"hostname":"soak","msg":"soak-marker-%06d"}\n'
                    % (ts["ms"], marker_n))
                counts["app"] += 1
                marker_at = now
            else:
                marker_at = None
            for name, lines in out.items():
                if name == COPYTRUNCATE and rotation is not None:
                    held.extend(lines)
                else:
                    os.write(fds[name], "".join(lines).encode("utf-8", "surrogateescape"))
            if marker_at is not None:
                prober.add(marker_n, time.time())
            written += due
        if a.progress and now - last_progress >= 1:
            last_progress = now
            with open(a.progress + ".tmp", "w") as f:
                f.write("%d %d %d\n" % (written + marker_n, rotations, rotate_failures))
            os.replace(a.progress + ".tmp", a.progress)
        time.sleep(0.01)

    if rotation is not None:
        finish_rotation()
    for fd in fds.values():
        os.close(fd)
    with open(a.totals + ".tmp", "w") as f:
        json.dump({"events": counts, "markers": marker_n, "rotations": rotations,
                   "rotate_failures": rotate_failures, "seconds": time.time() - start}, f, sort_keys=True)
    os.replace(a.totals + ".tmp", a.totals)


if __name__ == "__main__":
    main()
