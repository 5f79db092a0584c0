#!/usr/bin/env python3
"""The soak's feed clients (benches/soak.sh): N server-sent-event clients of /api/v1/feed, one
thread each, in one process.

    feed.py http://127.0.0.1:PORT N STATUS.json [DELAYS.csv]

Each client connects with `Last-Event-ID: 0` (so it must receive every change from the first),
reads the stream and checks that the ids go up by exactly one; on a lost connection it reconnects
with the last id it has (as a browser does) and counts the reconnection. Every second, and at
SIGTERM, the clients' state is written to STATUS.json:
{"clients": [{"connected", "events", "last_id", "gaps", "repeats", "reconnects", "heartbeats"}…]}.
The first client also appends `received_unix,seq,kind,at_unix,delay_ms` to DELAYS.csv for each
change: `at` is the change's event time, which the soak's writer sets to the wall clock of the
line's write, so the delay is line written → change on the feed (for `resolved` it is the
resolution's event time instead).
"""

import datetime
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse


class Client(threading.Thread):
    def __init__(self, host, port, delays=None):
        super().__init__(daemon=True)
        self.delays = delays
        self.host, self.port = host, port
        self.connected = False
        self.events = 0
        self.last_id = 0
        self.gaps = 0
        self.repeats = 0
        self.reconnects = -1  # the first connection is not one
        self.heartbeats = 0
        self.errors = []

    def run(self):
        while True:
            self.reconnects += 1
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                conn.request("GET", "/api/v1/feed", headers={"Last-Event-ID": str(self.last_id),
                                                             "Accept": "text/event-stream"})
                resp = conn.getresponse()
                if resp.status != 200:
                    raise RuntimeError("HTTP %d" % resp.status)
                self.connected = True
                while True:
                    line = resp.readline()
                    if not line:
                        raise RuntimeError("the server closed the stream")
                    if line.startswith(b"id:"):
                        seq = int(line[3:].strip())
                        if seq <= self.last_id:
                            self.repeats += 1
                        else:
                            if seq != self.last_id + 1:
                                self.gaps += seq - self.last_id - 1
                            self.last_id = seq
                            self.events += 1
                    elif line.startswith(b"data:") and self.delays is not None:
                        self.note_delay(line[5:])
                    elif line.startswith(b":"):
                        self.heartbeats += 1
            except Exception as e:  # noqa: BLE001 - any failure: reconnect
                self.connected = False
                if len(self.errors) < 5:
                    self.errors.append("%.0f %s" % (time.time(), e))
                time.sleep(1)

    def note_delay(self, data):
        received = time.time()
        try:
            change = json.loads(data)
            at = datetime.datetime.fromisoformat(change["at"].replace("Z", "+00:00")).timestamp()
            self.delays.write("%.3f,%d,%s,%.3f,%.1f\n" % (received, change["seq"], change["kind"], at,
                                                          (received - at) * 1000))
            self.delays.flush()
        except Exception as e:  # noqa: BLE001 - a measurement, not a check
            if len(self.errors) < 5:
                self.errors.append("delay: %s" % e)

    def state(self):
        return {k: getattr(self, k) for k in
                ("connected", "events", "last_id", "gaps", "repeats", "reconnects", "heartbeats", "errors")}


def main():
    url, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    u = urllib.parse.urlsplit(url)
    delays = open(sys.argv[4], "a") if len(sys.argv) > 4 else None
    clients = [Client(u.hostname, u.port, delays if i == 0 else None) for i in range(n)]
    for c in clients:
        c.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def write():
        with open(out + ".tmp", "w") as f:
            json.dump({"clients": [c.state() for c in clients]}, f)
        os.replace(out + ".tmp", out)

    while not stop.wait(1):
        write()
    write()


if __name__ == "__main__":
    main()
