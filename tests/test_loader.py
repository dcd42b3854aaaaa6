import numpy as np
import torch

from gptablate.data.loader import TrainBatches, val_windows
from gptablate.data.shards import open_dataset, write_shard


def make_dataset(root, sizes=(3000, 2000, 1234)):
    root.mkdir()
    rng = np.random.default_rng(0)
    write_shard(root / "d_val_000000.bin", rng.integers(0, 50000, 777))
    for k, n in enumerate(sizes, 1):
        write_shard(root / f"d_train_{k:06d}.bin", rng.integers(0, 50000, n))
    return open_dataset(root)


def step_tokens(ds, step, world, micro, seed=1, T=16, B=12):
    rows = []
    for rank in range(world):
        tb = TrainBatches(ds, T, seed, B, rank, world, micro)
        for m in range(B // world // micro):
            x, y = tb.get(step, m)
            assert torch.equal(x[:, 1:], y[:, :-1])
            rows.append(torch.cat([x, y[:, -1:]], 1))
    return torch.cat(rows)


def test_global_order_is_independent_of_ranks_and_micro_batch(tmp_path):
    ds = make_dataset(tmp_path / "d")
    for step in (0, 7, 60):  # 60 crosses into the second epoch
        ref = step_tokens(ds, step, world=1, micro=12)
        for world, micro in ((2, 3), (3, 2), (4, 1), (6, 2)):
            assert torch.equal(step_tokens(ds, step, world, micro), ref)


def test_seed_changes_order_and_windows_come_from_the_shards(tmp_path):
    ds = make_dataset(tmp_path / "d")
    a, b = TrainBatches(ds, 16, 1, 12), TrainBatches(ds, 16, 2, 12)
    assert not np.array_equal(a.tokens(0, 12), b.tokens(0, 12))
    # every window of an epoch is used exactly once
    starts = a.sequence_starts(0, a.per_epoch)
    assert len(set((k, s) for _, k, s in starts)) == a.per_epoch == sum((n - 1) // 16 for n in (3000, 2000, 1234))


def test_val_windows_cover_the_prefix_once(tmp_path):
    ds = make_dataset(tmp_path / "d")
    w = val_windows(ds, 16, 500)
    assert w.shape == ((500 - 1) // 16, 17)
    flat = np.concatenate([w[0]] + [row[1:] for row in w[1:]])
    from gptablate.data.shards import open_shard
    np.testing.assert_array_equal(flat, np.asarray(open_shard(ds.val.path))[: len(flat)])
