"""Training and validation batches from token shards.

The global order of training sequences is a function of the dataset, the seed and the
block size only. Sequence g of the run is window g of a seeded permutation of each shard's
non-overlapping (T+1)-token windows, shards in order, epochs repeating with a new seed.
Optimizer step s takes sequences [s·B, (s+1)·B); rank r takes its contiguous slice of
those and cuts it into micro-batches. So the same recipe sees the same tokens in the same
steps on 1 rank or 8, with any micro-batch.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import torch

from .shards import Dataset, ShardInfo, open_shard


class TrainBatches:
    def __init__(self, dataset: Dataset, block_size: int, seed: int, batch_size: int,
                 rank: int = 0, world_size: int = 1, micro_batch: int | None = None,
                 device: torch.device | str = "cpu"):
        self.dataset, self.T, self.seed = dataset, block_size, seed
        self.B = batch_size
        self.per_rank = batch_size // world_size
        self.micro_batch = micro_batch or self.per_rank
        self.rank = rank
        self.device = torch.device(device)
        self._shards: dict[int, np.memmap] = {}
        self._verified: set[int] = set()
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        counts = [max((s.tokens - 1) // block_size, 0) for s in dataset.train]
        self.per_epoch = sum(counts)
        if self.per_epoch == 0:
            raise ValueError(f"{dataset.root}: no training shard holds one window of {block_size + 1} tokens")
        self._starts = np.cumsum([0] + counts[:-1]).tolist()
        self._counts = counts
        self._pin = self.device.type == "cuda"

    def _shard(self, k: int) -> np.memmap:
        if k not in self._shards:
            info: ShardInfo = self.dataset.train[k]
            if k not in self._verified:
                self.dataset.verify(info)  # header, size, checksum: a corrupt shard is named
                self._verified.add(k)
            self._shards = {k: open_shard(info.path)}  # keep one shard mapped at a time
        return self._shards[k]

    def _perm(self, epoch: int, k: int) -> np.ndarray:
        key = (epoch, k)
        if key not in self._perms:
            rng = np.random.default_rng([self.seed, epoch, k])
            self._perms = {key: rng.permutation(self._counts[k])}
        return self._perms[key]

    def sequence_starts(self, first: int, n: int) -> list[tuple[int, int]]:
        """(shard, token offset) of global sequences first .. first+n-1."""
        out = []
        for g in range(first, first + n):
            epoch, idx = divmod(g, self.per_epoch)
            k = bisect_right(self._starts, idx) - 1
            j = idx - self._starts[k]
            out.append((epoch, k, int(self._perm(epoch, k)[j]) * self.T))
        return out

    def tokens(self, first: int, n: int) -> np.ndarray:
        """(n, T+1) int64 windows of global sequences first .. first+n-1."""
        rows = np.empty((n, self.T + 1), dtype=np.int64)
        for i, (_, k, start) in enumerate(self.sequence_starts(first, n)):
            rows[i] = self._shard(k)[start:start + self.T + 1]
        return rows

    def get(self, step: int, micro_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) for one micro-step of this rank, on the device (copied asynchronously)."""
        first = step * self.B + self.rank * self.per_rank + micro_step * self.micro_batch
        rows = torch.from_numpy(self.tokens(first, self.micro_batch))
        if self._pin:
            rows = rows.pin_memory()
        rows = rows.to(self.device, non_blocking=True)
        return rows[:, :-1], rows[:, 1:]


def val_windows(dataset: Dataset, block_size: int, eval_tokens: int) -> np.ndarray:
    """(n, T+1) windows over the fixed validation prefix: the same for every run and world size."""
    dataset.verify(dataset.val)
    tokens = open_shard(dataset.val.path)
    usable = min(eval_tokens, len(tokens))
    n = (usable - 1) // block_size
    if n < 1:
        raise ValueError(f"{dataset.val.path}: {usable} validation tokens hold no window of {block_size + 1}")
    idx = np.arange(n)[:, None] * block_size + np.arange(block_size + 1)[None, :]
    return np.asarray(tokens[: n * block_size + 1])[idx].astype(np.int64)
