"""Unit tests of the benchmark's pure helpers (no cluster, no timings):
python3 -m unittest discover -s bench/engine"""

import json
import os
import tempfile
import unittest
from pathlib import Path

import report
import stats


class PercentileTest(unittest.TestCase):
    def test_interpolates_between_ranks(self):
        self.assertEqual(stats.percentile([1, 2, 3, 4, 5], 50), 3)
        self.assertAlmostEqual(stats.percentile([1, 2, 3, 4], 50), 2.5)
        self.assertAlmostEqual(stats.percentile(list(range(1, 21)), 95), 19.05)
        self.assertEqual(stats.percentile([7], 95), 7)
        self.assertIsNone(stats.percentile([], 50))

    def test_summary_keeps_the_samples(self):
        s = stats.summarize([0.2, 0.1, 0.3])
        self.assertEqual(s["count"], 3)
        self.assertEqual(s["p50_s"], 0.2)
        self.assertEqual(s["samples_s"], [0.2, 0.1, 0.3])


class MetricsTest(unittest.TestCase):
    TEXT = """# HELP ferry_kube_requests Requests
# TYPE ferry_kube_requests counter
ferry_kube_requests_total{verb="GET",code="200"} 10
ferry_kube_requests_total{verb="PATCH",code="200"} 5
ferry_render_seconds_count{repo="file:///tmp/r"} 3
ferry_app_reconcile_seconds_count 42
"""

    def test_sums_by_name_and_labels(self):
        samples = stats.parse_metrics(self.TEXT)
        self.assertEqual(stats.metric_sum(samples, "ferry_kube_requests_total"), 15)
        self.assertEqual(stats.metric_sum(samples, "ferry_kube_requests_total", verb="GET"), 10)
        self.assertEqual(stats.metric_sum(samples, "ferry_render_seconds_count"), 3)
        self.assertEqual(stats.metric_sum(samples, "ferry_app_reconcile_seconds_count"), 42)

    def test_sums_grouped_by_labels(self):
        samples = stats.parse_metrics(self.TEXT + 'ferry_kube_requests_total{verb="GET",code="404"} 2\n')
        self.assertEqual(stats.sums_by(samples, "ferry_kube_requests_total", "verb"),
                         {"GET": 12, "PATCH": 5})
        # A label the samples lack groups as empty, stripped.
        self.assertEqual(stats.sums_by(samples, "ferry_kube_requests_total", "verb", "resource"),
                         {"GET": 12, "PATCH": 5})

    def test_missing_metric_is_none(self):
        samples = stats.parse_metrics(self.TEXT)
        self.assertIsNone(stats.metric_sum(samples, "ferry_nothing_total"))
        self.assertIsNone(stats.delta(None, 3))
        self.assertIsNone(stats.ratio(1, 0))


class ReportTest(unittest.TestCase):
    def test_table_has_a_row_per_result(self):
        with tempfile.TemporaryDirectory() as d:
            r = {
                "benchmark": "engine", "n": 10, "profile": "configmap", "date": "2026-01-01T00:00:00Z",
                "initial_sync": {"seconds": 1.5, "ratio_to_ssa_loop": 3.0},
                "baselines": {"ssa_loop_s": 0.5},
                "commit_to_applied_webhook": {"p50_s": 0.4, "p95_s": 0.9,
                                              "first_commit_cost": {"renders": 1, "reconciles": 11, "kube_requests": None}},
                "machine": {"cpus": 2},
            }
            Path(d, "a.json").write_text(json.dumps(r))
            out = report.write(d).read_text()
            self.assertIn("| 2026-01-01 00:00 | configmap | 10 | 1.50 | 0.50 | 3.00 |", out)
            self.assertIn("0.40 / 0.90", out)
            self.assertIn("1 / 11 / –", out)



class ProcStatusTest(unittest.TestCase):
    def test_reads_named_fields_and_none_for_others(self):
        rss, anon, missing = stats.proc_status_kib(os.getpid(), "VmRSS", "RssAnon", "NoSuchField")
        self.assertGreater(rss, 0)
        self.assertGreater(anon, 0)
        self.assertLessEqual(anon, rss)
        self.assertIsNone(missing)


if __name__ == "__main__":
    unittest.main()
