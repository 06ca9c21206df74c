#!/usr/bin/env python3
"""CPU per span of jobq-sidecar binaries, measured side by side.

Each run starts every given sidecar binary in turn (the order alternates
from run to run), feeds it the same agent-shaped span load
(build/bench/span_load: the agent's own SpanBatch encoder, 50 ms ticks,
frames of <= 512 spans) and takes the process's whole CPU time (all its
threads, from wait4) divided by the spans sent. The OTLP/HTTP peer is a
discarding sink in this process (its CPU is not counted), as in
bench/compare. Prints per-run figures, then the median and [min-max] per
binary, and the load average before and after.

  sidecar_span_cpu.py --bin OLD --bin NEW [--runs 7] [--rate 40000] [--seconds 5]
                      [--protocol http/protobuf|http/json] [--gzip] [--otlp-file]

A --bin of the form VAR=VALUE,VAR2=VALUE2@PATH runs PATH with those
environment variables (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2048@build/jobq-sidecar).
"""
import argparse
import http.server
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def one(spec, args, endpoint, tmp):
    sock = os.path.join(tmp, "sc.sock")
    env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
               OTEL_EXPORTER_OTLP_PROTOCOL=args.protocol,
               OTEL_EXPORTER_OTLP_COMPRESSION="gzip" if args.gzip else "none")
    binary = spec
    if "@" in spec:
        assigns, binary = spec.split("@", 1)
        env.update(kv.split("=", 1) for kv in assigns.split(","))
    cmd = [binary, "--listen", sock, "--prom-listen", "off"]
    if args.otlp_file:
        cmd += ["--otlp-file", os.path.join(tmp, "out.jsonl")]
    side = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        out = subprocess.run([os.path.join(BUILD, "bench", "span_load"), "--socket", sock,
                              "--rate", str(args.rate), "--seconds", str(args.seconds)],
                             capture_output=True, text=True, check=True)
        spans = int(out.stdout.split("=")[1])
        time.sleep(0.5)  # the last full batch goes out; the rest at the final flush
        side.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(side.pid, 0)
        side.returncode = status
    finally:
        if side.returncode is None:
            side.kill()
            side.wait()
        for f in ("sc.sock", "out.jsonl"):
            try:
                os.unlink(os.path.join(tmp, f))
            except FileNotFoundError:
                pass
    if status != 0:
        raise RuntimeError("%s exited with status %d" % (binary, status))
    return (ru.ru_utime + ru.ru_stime) / spans * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rate", type=float, default=40000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--protocol", default="http/protobuf")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--otlp-file", action="store_true")
    args = ap.parse_args()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    endpoint = "http://127.0.0.1:%d" % srv.server_address[1]
    res = {b: [] for b in args.bin}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            order = args.bin if r % 2 == 0 else list(reversed(args.bin))
            for b in order:
                ns = one(b, args, endpoint, tmp)
                res[b].append(ns)
                print("run %d %-40s %7.0f ns/span" % (r, b, ns), file=sys.stderr, flush=True)
    srv.shutdown()
    load1 = os.getloadavg()
    print("sidecar CPU per span, %d runs of %.0f spans/s for %.0f s (%s%s%s); load average %.2f -> %.2f"
          % (args.runs, args.rate, args.seconds, args.protocol, ", gzip" if args.gzip else "",
             ", --otlp-file" if args.otlp_file else "", load0[0], load1[0]))
    for b in args.bin:
        v = res[b]
        print("  %-40s median %6.0f ns/span  [%.0f-%.0f]" % (b, statistics.median(v), min(v), max(v)))


if __name__ == "__main__":
    main()
