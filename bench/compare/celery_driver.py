"""celery_driver.py - the Celery side of bench/compare (plan and job-log
formats: see jobq_driver.c). Redis is the broker; results are ignored.

  python3 celery_driver.py enqueue REDIS_URL QUEUE < plan   (QUEUE "p*": p<tenant>)
  python3 -m celery -A celery_driver worker -Q QUEUE... --concurrency N
                    (PYTHONPATH here, COMPARE_REDIS_URL set)

Celery has no bulk enqueue: apply_async in a loop on one producer
connection is the fast path its users take.
"""
import os
import sys
import time

from celery import Celery

from rq_driver import log_run, read_plan, replay

app = Celery("bench", broker=os.environ.get("COMPARE_REDIS_URL", "redis://127.0.0.1:6379"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True, worker_send_task_events=False)


@app.task(name="work")
def work(tenant, enq_ns, ms):
    start = time.time_ns()
    if ms:
        time.sleep(ms / 1000.0)
    log_run(tenant, enq_ns, start, time.time_ns())


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "enqueue":
        sys.exit("usage: celery_driver.py enqueue REDIS_URL QUEUE < plan")
    app.conf.broker_url = sys.argv[2]
    queue = sys.argv[3]
    with app.producer_or_acquire() as producer:
        def send(group):
            for t, ms in group:
                q = queue[:-1] + t if queue.endswith("*") else queue
                work.apply_async((t, time.time_ns(), ms), queue=q, producer=producer)

        total, wall = replay(read_plan(sys.stdin), send)
    print("enqueued=%d wall_ns=%d" % (total, wall))


if __name__ == "__main__":
    main()
