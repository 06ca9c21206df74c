"""peers.py - one adapter per system compared by bench/compare: how to
enqueue a plan, start its workers, and count its unfinished jobs in Redis.

Every adapter runs the same plan (see jobq_driver.c) with the same worker
concurrency. `remaining()` reads the system's own Redis keys; it is what a
user would watch to know the queue has drained.
"""
import os
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's python: python3-rq and python3-celery live there


def _run_enqueue(argv, plan, env=None):
    p = subprocess.run(argv, input=plan, capture_output=True, text=True, env=env, cwd=HERE)
    if p.returncode != 0:
        raise RuntimeError("%s enqueue failed: %s" % (argv[0], p.stderr.strip()[-500:]))
    f = dict(kv.split("=") for kv in p.stdout.split())
    return int(f["enqueued"]), int(f["wall_ns"])


def _env(extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


class Peer:
    name = "?"
    modes = ("fifo",)      # noisy-neighbour layouts this peer supports
    noisy_opts = {}        # extra start() options for the noisy-neighbour scenario
    note = ""

    def __init__(self, build, url):
        self.build, self.url = build, url

    def missing(self):
        """None when runnable, else why not (shown in the tables)."""
        return None

    def queues(self, mode, tenants):
        return ["bench"] if mode in ("fifo", "fair") else ["bench-" + t for t in tenants]

    def stop(self, procs):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Jobq(Peer):
    name = "jobq"
    modes = ("fair",)
    note = ("one queue, weighted fair queuing across tenants (built in); one worker process "
            "with C handler threads; batch 16 and --prefetch 16 (the default is 0), but "
            "--prefetch 0 in the noisy-neighbour scenario")

    def missing(self):
        drv = os.path.join(self.build, "bench", "compare", "jobq_driver")
        return None if os.access(drv, os.X_OK) else "%s not built (make all)" % drv

    def enqueue(self, plan, queues):
        return _run_enqueue([os.path.join(self.build, "bench", "compare", "jobq_driver"),
                             "enqueue", "--redis", self.url, "--queue", queues[0]], plan)

    # Noisy neighbour: --prefetch 0 leases only for free handler slots, so a
    # small tenant's job never queues behind flood jobs this worker already
    # holds. Elsewhere batch 16 with --prefetch 16 for throughput (jobq's
    # default prefetch is 0).
    noisy_opts = {"prefetch": 0}

    batch = 16

    def start(self, queues, conc, job_log=None, otel=None, prefetch=16):
        argv = [os.path.join(self.build, "bench", "compare", "jobq_driver"), "worker",
                "--redis", self.url, "--queue", queues[0], "--concurrency", str(conc),
                "--batch", str(self.batch)]
        if prefetch is not None:
            argv += ["--prefetch", str(prefetch)]
        if job_log:
            argv += ["--job-log", job_log]
        return [subprocess.Popen(argv, stdout=subprocess.DEVNULL)]

    def remaining(self, r, queues, tenants):
        pre = "jobq:{%s}:" % queues[0]
        pipe = r.pipeline(transaction=False)
        for t in tenants:
            for p in range(3):
                pipe.llen("%sq:%s:%d" % (pre, t, p))
        pipe.zcard(pre + "leases")
        pipe.zcard(pre + "delayed")
        return sum(pipe.execute())


class JobqBatched(Jobq):
    """jobq tuned for short jobs as docs/cli.md recommends (--batch 128
    --prefetch 128): a separate, labelled row in the throughput table only;
    every other scenario uses the Jobq row's settings."""
    name = "jobq-b128"
    modes = ()
    note = ("jobq configured for short jobs: batch 128 and --prefetch 128 (docs/cli.md); "
            "throughput scenario only")
    batch = 128

    def start(self, queues, conc, job_log=None, otel=None, prefetch=128):
        return Jobq.start(self, queues, conc, job_log, otel, prefetch)


class BullMQ(Peer):
    name = "BullMQ"
    note = "one queue (FIFO); no tenant fairness"

    def missing(self):
        if not shutil.which("node"):
            return "node not installed"
        if not os.path.isdir(os.path.join(HERE, "node_modules", "bullmq")):
            return "npm package bullmq not installed (bench/compare/install-peers.sh)"
        return None

    def enqueue(self, plan, queues):
        return _run_enqueue(["node", "bullmq_driver.js", "enqueue", self.url], plan)

    def start(self, queues, conc, job_log=None, otel=None):
        argv = ["node", os.path.join(HERE, "bullmq_driver.js"), "worker", self.url, str(conc),
                job_log or "-"]
        if otel:
            argv += ["--otel", otel]
        return [subprocess.Popen(argv, cwd=HERE, stdout=subprocess.DEVNULL)]

    def remaining(self, r, queues, tenants):
        pipe = r.pipeline(transaction=False)
        for k in ("wait", "active", "paused"):
            pipe.llen("bull:bench:" + k)
        pipe.zcard("bull:bench:prioritized")
        return sum(pipe.execute())


def _py_has(module):
    return subprocess.run([PY, "-c", "import " + module], capture_output=True).returncode == 0


class RQ(Peer):
    name = "RQ"
    note = ("one queue (FIFO); C SimpleWorker processes (no fork per job: faster "
            "than RQ's default Worker)")

    def missing(self):
        return None if _py_has("rq") else "python3-rq not installed"

    def enqueue(self, plan, queues):
        return _run_enqueue([PY, "rq_driver.py", "enqueue", self.url, queues[0]], plan)

    def start(self, queues, conc, job_log=None, otel=None):
        env = _env({"COMPARE_JOB_LOG": job_log})
        return [subprocess.Popen([PY, "-m", "rq.cli", "worker", "-u", self.url, "-q",
                                  "-w", "rq.worker.SimpleWorker"] + queues,
                                 cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
                for _ in range(conc)]

    def remaining(self, r, queues, tenants):
        pipe = r.pipeline(transaction=False)
        for q in queues:
            pipe.llen("rq:queue:" + q)
            pipe.zcard("rq:wip:" + q)
        return sum(pipe.execute())


class Celery(Peer):
    name = "Celery"
    modes = ("fifo", "per-tenant")
    note = ("prefork pool of C processes, default prefetch; per-tenant: one queue per "
            "tenant, which the Redis transport polls round-robin")

    def missing(self):
        return None if _py_has("celery") else "python3-celery not installed"

    def enqueue(self, plan, queues):
        q = queues[0] if len(queues) == 1 else "bench-*"  # "*": the job's tenant
        return _run_enqueue([PY, "celery_driver.py", "enqueue", self.url, q], plan)

    def start(self, queues, conc, job_log=None, otel=None):
        env = _env({"COMPARE_JOB_LOG": job_log, "COMPARE_REDIS_URL": self.url})
        return [subprocess.Popen([PY, "-m", "celery", "-A", "celery_driver", "worker",
                                  "-Q", ",".join(queues), "--concurrency", str(conc),
                                  "--pool", "prefork", "--without-gossip", "--without-mingle",
                                  "--without-heartbeat", "-l", "error"],
                                 cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)]

    def remaining(self, r, queues, tenants):
        pipe = r.pipeline(transaction=False)
        for q in queues:
            pipe.llen(q)
        pipe.hlen("unacked")
        return sum(pipe.execute())


class Sidekiq(Peer):
    name = "Sidekiq"
    modes = ("fifo", "per-tenant")
    note = ("one process with C threads; per-tenant: one queue per tenant with equal "
            "weights (Sidekiq's weighted random queue order)")

    def missing(self):
        if not shutil.which("sidekiq"):
            return "ruby-sidekiq not installed"
        return None

    def enqueue(self, plan, queues):
        q = queues[0] if len(queues) == 1 else "bench-*"  # "*": the job's tenant
        return _run_enqueue(["ruby", "sidekiq_driver.rb", "enqueue", self.url, q], plan)

    def start(self, queues, conc, job_log=None, otel=None):
        env = _env({"COMPARE_JOB_LOG": job_log, "REDIS_URL": self.url})
        qargs = []
        for q in queues:
            qargs += ["-q", q + ",1"] if len(queues) > 1 else ["-q", q]
        return [subprocess.Popen(["sidekiq", "-r", os.path.join(HERE, "sidekiq_driver.rb"),
                                  "-c", str(conc)] + qargs, cwd=HERE, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def remaining(self, r, queues, tenants):
        pipe = r.pipeline(transaction=False)
        for q in queues:
            pipe.llen("queue:" + q)
        return sum(pipe.execute())


ALL = (Jobq, JobqBatched, BullMQ, RQ, Celery, Sidekiq)
# Scenarios other than throughput run one configuration per system.
THROUGHPUT_ONLY = ("jobq-b128",)
