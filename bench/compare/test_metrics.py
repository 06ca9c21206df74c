#!/usr/bin/python3
"""test_metrics.py - the bench's pure figures on hand-made job logs: the
percentile, Jain's index, backlog windows and the sanity check."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics  # noqa: E402

MS = 1000000


class Percentile(unittest.TestCase):
    def test_nearest_rank_p99_of_100_values_is_the_99th(self):
        self.assertEqual(metrics.percentile(list(range(1, 101)), 99), 99)

    def test_p99_of_few_values_is_the_maximum(self):
        self.assertEqual(metrics.percentile([5, 1, 3], 99), 5)

    def test_p99_wait_only_counts_the_tenant(self):
        jobs = [("a", 0, 2 * MS, 3 * MS), ("b", 0, 50 * MS, 60 * MS)]
        self.assertAlmostEqual(metrics.p99_wait_ms(jobs, "a"), 2.0)


class Jain(unittest.TestCase):
    def test_equal_shares_give_one(self):
        self.assertAlmostEqual(metrics.jain([3, 3, 3]), 1.0)

    def test_one_tenant_taking_all_gives_one_over_n(self):
        self.assertAlmostEqual(metrics.jain([10, 0, 0, 0]), 0.25)


def backlog(share_b):
    """Two tenants, both with a job waiting across [0, 1 s); in every 100 ms
    window a works 100 - share_b ms and b works share_b ms. Window-sized
    jobs start back to back, each enqueued at t=0."""
    jobs = []
    for k in range(10):
        t = k * 100 * MS
        a_ms = 100 - share_b
        jobs.append(("a", 0, t, t + a_ms * MS))
        if share_b:
            jobs.append(("b", 0, t + a_ms * MS, t + 100 * MS))
    # Keep both tenants backlogged until the end: one more job each, late.
    jobs.append(("a", 0, 1000 * MS, 1001 * MS))
    jobs.append(("b", 0, 1001 * MS, 1002 * MS))
    return jobs


class Backlogged(unittest.TestCase):
    def test_equal_service_of_two_backlogged_tenants_is_fair(self):
        j, frac = metrics.jain_backlogged(backlog(50), 100)
        self.assertAlmostEqual(j, 1.0, places=2)
        self.assertGreater(frac, 0.9)

    def test_starved_backlogged_tenant_gives_half(self):
        j, _ = metrics.jain_backlogged(backlog(0), 100)
        self.assertAlmostEqual(j, 0.5, places=2)

    def test_tenants_served_on_arrival_are_never_backlogged_together(self):
        jobs = [("a", k * 100 * MS, k * 100 * MS, k * 100 * MS + 10 * MS) for k in range(10)]
        jobs += [("b", k * 100 * MS + 50 * MS, k * 100 * MS + 50 * MS, k * 100 * MS + 60 * MS)
                 for k in range(10)]
        j, frac = metrics.jain_backlogged(jobs, 100)
        self.assertIsNone(j)
        self.assertEqual(frac, 0.0)

    def test_throughput_is_jobs_over_first_enqueue_to_last_end(self):
        jobs = [("a", 0, 0, 500 * MS), ("a", 0, 500 * MS, 1000 * MS)]
        self.assertAlmostEqual(metrics.throughput(jobs), 2.0)


class Check(unittest.TestCase):
    def test_zero_rate_is_reported(self):
        res = {"throughput": {"x": [{"enq": 1, "proc": 0, "cpu_us": 1, "redis_us": 1}]},
               "noisy": {}, "scaling": {}}
        bad = metrics.check(res)
        self.assertTrue(any("throughput x proc" in b for b in bad))
        self.assertTrue(any("noisy" in b for b in bad))

    def test_sane_results_pass(self):
        res = {"throughput": {"x": [{"enq": 1, "proc": 2, "cpu_us": 1, "redis_us": 1}]},
               "noisy": {"x": [{"p99_flood": 9, "p99_base": 1, "tput": 5, "jain": 0.5}]},
               "scaling": {10: [{"cpu_us": 3}]}}
        self.assertEqual(metrics.check(res), [])


if __name__ == "__main__":
    r = unittest.main(exit=False, verbosity=1).result
    failed = len(r.failures) + len(r.errors)
    print("%d passed, %d failed" % (r.testsRun - failed, failed))
    sys.exit(1 if failed else 0)
