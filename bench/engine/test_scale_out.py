"""Unit tests of the scale-out benchmark's copy of ferry's rendezvous hash."""

import unittest

import scale_out


class RendezvousTest(unittest.TestCase):
    def test_the_hash_is_the_controllers(self):
        # The value pinned in crates/controller/src/shard.rs's tests.
        self.assertEqual(
            scale_out.stable_hash(["ferry-controller-0", "https://kubernetes.default.svc"]),
            12207719185782342165,
        )
        ids = [f"ferry-controller-{i}" for i in range(3)]
        self.assertEqual(scale_out.owner_of("https://kubernetes.default.svc", ids), "ferry-controller-1")

    def test_balanced_ids_split_three_clusters_two_to_one(self):
        clusters = ["https://kubernetes.default.svc", "https://127.0.0.1:40001", "https://127.0.0.1:40002"]
        ids = scale_out.balanced_ids(clusters)
        counts = sorted(sum(scale_out.owner_of(c, ids) == m for c in clusters) for m in ids)
        self.assertEqual(counts, [1, 2])


if __name__ == "__main__":
    unittest.main()
