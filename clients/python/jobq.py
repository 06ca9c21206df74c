"""jobq producer for Python, on Debian's python3-redis.

Enqueues jobs that the C worker (libjobq / `jobq worker`) runs. It uses the
very same Lua script as the C library (queue/lua/common.lua followed by
queue/lua/enqueue.lua), so the job document and the fair-scheduling state
are maintained identically; see docs/redis-layout.md.

Usage
-----
Requirements: Debian's python3-redis (`apt-get install python3-redis`),
which installs the `redis` module for the system interpreter only. Run
with /usr/bin/python3: a pyenv (or other virtual/self-built) python3
earlier in $PATH does not see Debian's packages and fails with
"No module named 'redis'". No other dependency; nothing to build.

The module is one file: put clients/python on PYTHONPATH (or copy
jobq.py). It finds the Lua scripts via $JOBQ_LUA_DIR, else the source
tree next to it (queue/lua), else $(PREFIX)/share/jobq/lua from
`make install`.

    import redis, jobq
    q = jobq.JobQueue(redis.Redis.from_url("redis://127.0.0.1:6379"),
                      queue="default")
    job_id = q.enqueue("acme", "export", {"rows": 100}, priority="high")

From the shell (prints the job id):

    PYTHONPATH=clients/python /usr/bin/python3 -m jobq \
        --redis redis://127.0.0.1:6379 acme export '{"rows": 100}' high

The signature follows the seed article: enqueue(tenant_id, job_type,
payload, priority="normal"), plus optional delay_ms, max_attempts and a
W3C traceparent. A payload given as bytes or str is stored as is; any
other value is stored as its JSON text, and must be valid JSON (no NaN or
Infinity, which json.dumps would otherwise write). Invalid input raises
ValueError naming the field; nothing is enqueued then.
"""

import json
import os
import secrets
import time

__all__ = ["JobQueue", "PRIORITIES", "find_lua_dir"]

PRIORITIES = ("high", "normal", "low")
NAME_MAX = 64  # bytes, as JOBQ_TENANT_MAX / JOBQ_TYPE_MAX


def find_lua_dir():
    """The directory holding common.lua and enqueue.lua: $JOBQ_LUA_DIR, the
    checked-out tree next to this file, or the installed share dir."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.environ.get("JOBQ_LUA_DIR"),
        os.path.join(here, "..", "..", "queue", "lua"),
        "/usr/local/share/jobq/lua",
        "/usr/share/jobq/lua",
    ]
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, "enqueue.lua")):
            return os.path.normpath(d)
    raise FileNotFoundError("jobq Lua scripts not found; set JOBQ_LUA_DIR")


def _check_name(field, value):
    if not isinstance(value, str):
        raise ValueError("%s must be a string" % field)
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s must be valid UTF-8" % field) from None
    if not raw:
        raise ValueError("%s must not be empty" % field)
    if len(raw) > NAME_MAX:
        raise ValueError("%s must be at most %d bytes (got %d)" % (field, NAME_MAX, len(raw)))
    if any(c < 0x20 or c == 0x7F for c in raw):
        raise ValueError("%s must not contain control characters" % field)
    return raw


def _parse_traceparent(tp):
    """Returns (trace_id_hex, flags_hex) of a W3C traceparent."""
    parts = tp.split("-") if isinstance(tp, str) else []
    ok = (len(tp) == 55 and len(parts) == 4 and parts[0] == "00"
          and len(parts[1]) == 32 and len(parts[2]) == 16 and len(parts[3]) == 2
          and all(c in "0123456789abcdef" for c in "".join(parts))
          and parts[1] != "0" * 32 and parts[2] != "0" * 16) if isinstance(tp, str) else False
    if not ok:
        raise ValueError("traceparent must be 00-<32 hex>-<16 hex>-<2 hex> (got %r)" % (tp,))
    return parts[1], parts[3]


class JobQueue:
    def __init__(self, redis_client, queue="default", max_payload=1 << 20, lua_dir=None):
        _check_name("queue", queue)
        if "{" in queue or "}" in queue:
            raise ValueError("queue must not contain '{' or '}'")
        self.redis = redis_client
        self.queue = queue
        self.prefix = "jobq:{%s}:" % queue
        self.max_payload = max_payload
        d = lua_dir or find_lua_dir()
        with open(os.path.join(d, "common.lua")) as f:
            src = f.read()
        with open(os.path.join(d, "enqueue.lua")) as f:
            src += f.read()
        # register_script: EVALSHA, falling back to loading on NOSCRIPT.
        self._enqueue = redis_client.register_script(src)

    def enqueue(self, tenant_id, job_type, payload, priority="normal", delay_ms=0,
                max_attempts=5, traceparent=None):
        """Adds one job; returns its id (int)."""
        tenant = _check_name("tenant_id", tenant_id)
        jtype = _check_name("type", job_type)
        if priority not in PRIORITIES:
            raise ValueError("priority must be high, normal or low (got %r)" % (priority,))
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            # allow_nan=False: NaN/Infinity would be written as bare NaN,
            # which is not JSON (RFC 8259) and breaks consumers that parse it.
            try:
                body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
            except ValueError as e:
                raise ValueError("payload must be valid JSON: NaN and Infinity are not "
                                 "allowed (%s)" % e) from None
            except TypeError as e:
                raise ValueError("payload must be bytes, str or a JSON-serializable value "
                                 "(%s)" % e) from None
        if len(body) > self.max_payload:
            raise ValueError("payload is %d bytes, over the limit of %d" % (len(body), self.max_payload))
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError("delay_ms must be a non-negative integer")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError("max_attempts must be an integer >= 1")
        if traceparent is not None:
            trace_id, flags = _parse_traceparent(traceparent)
        else:
            trace_id, flags = secrets.token_hex(16), "01"
        span_id = secrets.token_hex(8)  # the job.enqueue span
        ns = time.time_ns()
        args = [tenant, jtype, body, priority,
                "%d.%06d" % (ns // 10**9, ns % 10**9 // 1000), str(ns),
                trace_id, span_id, flags, str(max_attempts), str(delay_ms)]
        return int(self._enqueue(keys=[self.prefix], args=args))


if __name__ == "__main__":
    # jobq.py [--redis URL] [--queue Q] TENANT TYPE PAYLOAD [PRIORITY]
    import argparse
    import redis

    ap = argparse.ArgumentParser(description="enqueue one jobq job")
    ap.add_argument("--redis", default=os.environ.get("JOBQ_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--queue", default="default")
    ap.add_argument("tenant_id")
    ap.add_argument("job_type")
    ap.add_argument("payload")
    ap.add_argument("priority", nargs="?", default="normal")
    a = ap.parse_args()
    try:
        print(JobQueue(redis.Redis.from_url(a.redis), a.queue).enqueue(
            a.tenant_id, a.job_type, a.payload, a.priority))
    except ValueError as e:
        raise SystemExit("jobq.py: %s" % e)
