"""The training loop: one process, or one rank of a torchrun job.

Per optimizer step: `accum_steps` micro-batches (gradient sync on the last one only),
clipping, AdamW, the schedule. Validation every `eval_interval` steps and at the end on a
fixed prefix of the validation shard. Rank 0 writes the run directory, metrics.jsonl
(flushed per line) and the results table; the other ranks only compute.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..console import info, interactive
from ..errors import Interrupted, UserError
from ..data.loader import TrainBatches, val_windows
from ..data.shards import open_dataset
from ..model.gpt import GPT, GPTConfig
from ..paths import atomic_write_text, data_root
from ..plugins import plugin_sources
from ..recipe import AUTO, Recipe, _divisors, plan_batch
from ..results.store import ResultStore
from .checkpoint import STATE_DIR, latest_train_state, load_checkpoint, save_checkpoint, save_train_state
from .cpu import keep_heap_memory
from .heap import CollectorClock
from .metrics import datasheet_peak, measure_matmul_flops
from .optim import lr_at, make_optimizer

CHECKPOINT = "checkpoint.pt"
DDP_GRAPH = {"split": "ddp_optimizer", "whole": "no_optimization"}  # train.ddp_graph -> dynamo's optimize_ddp
# train.ddp_graph=auto takes one whole graph below this many parameters on one node: on 4 H200s the whole graph
# stepped 1.3-2.3% faster for 124M and 0.85% for 345M, the split one 1.4% faster for 1.5B, whose 6.2 GB of fp32
# gradients take ~26 ms to all-reduce after the backward (docs/performance.md, calls BG to BJ). The crossover, by
# a straight line through the 345M and 1.5B gains, is near 800M; between nodes the exposed all-reduce is slower.
WHOLE_GRAPH_MAX_PARAMS = 800_000_000
METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def ddp_graph_form(setting: str, n_params: int, world_size: int, local_world_size: int) -> str:
    """The DDP graph form a compiled run takes: the recipe's, or for "auto" one whole graph for models under
    WHOLE_GRAPH_MAX_PARAMS on a single node, else the graph split at the buckets."""
    if setting != AUTO:
        return setting
    return "whole" if n_params < WHOLE_GRAPH_MAX_PARAMS and local_world_size >= world_size else "split"


def compile_unit(setting: str, blocks_compilable: bool, world_size: int = 1) -> str:
    """What torch.compile takes as its unit: block where the model allows it and train.compile_unit asks for it
    (auto: on one process), else the whole model."""
    wants_block = setting == "block" or (setting == AUTO and world_size == 1)
    return "block" if wants_block and blocks_compilable else "model"


def resolve_device(requested: str | None) -> str:
    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def init_distributed(device_type: str) -> tuple[DistInfo, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info_ = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        device = torch.device("cuda", info_.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if info_.enabled and not dist.is_initialized():
        if device_type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return info_, device


_UNSET = object()


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def agree_on_run(recipe: Recipe, run_id: str, run_dir: Path, dinfo: DistInfo) -> str:
    """The run the ranks train: rank 0's. Every rank's recipe must be rank 0's.

    Several nodes each start their own `gptablate train`, which resolves its own command line and makes its own run
    folder before the ranks meet (torchrun's c10d rendezvous decides which node holds rank 0).
    Ranks built from different recipes would train different models and wait on each other for ever, so each one's
    resolved recipe (the order of its --set items aside) is checked against rank 0's, and every rank stops with the
    same one-line error. A node whose own folder is not the run's is told the run's id in it (WORKER_RUN)."""
    from .launch import WORKER_RUN

    mine = recipe.to_dict()
    mine.pop("overrides", None)  # --set a=1 --set b=2 and --set b=2 --set a=1 train the same
    if recipe.plugins:  # a plug-in by its name and code: the nodes' checkouts may sit in different folders
        mine["plugins"] = recipe.science()["plugins"]
    everyone: list = [None] * dinfo.world_size
    dist.all_gather_object(everyone, (run_id, mine, socket.gethostname()))
    first_id, first, first_host = everyone[0]
    for rank, (_, theirs, host) in enumerate(everyone):
        if theirs != first:
            a, b = _leaves(first), _leaves(theirs)
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _UNSET) != b.get(k, _UNSET))
            shown = ", ".join(f"{k} ({_said(b, k)} against {_said(a, k)})" for k in keys[:4])
            more = " …" if len(keys) > 4 else ""
            raise UserError(f"the recipe of rank {rank} (on {host}) differs from rank 0's (on {first_host}) in "
                            f"{shown}{more}: start every node with the same RECIPE and --set")
    if first_id != run_id and dinfo.local_rank == 0:
        atomic_write_text(run_dir / WORKER_RUN, first_id)
    return first_id


def _said(leaves: dict, key: str) -> str:
    return repr(leaves[key]) if key in leaves else "unset"


def auto_micro_batch(cfg: GPTConfig, per_rank: int, device: torch.device, n_params: int,
                     compiled: bool = True) -> int:
    """Largest divisor of the per-rank batch whose activations fit in free GPU memory.

    Estimate per token: ~34·D bytes of bf16 activations per layer with flash attention
    (Korthikanti et al. 2022, without the attention-matrix term) plus the logits: ~4 bytes
    per vocabulary entry when compiled (inductor fuses the fp32 upcast into the loss), ~12
    eager (logits, their fp32 copy and its gradient). Fixed: 16 bytes per parameter (weights,
    grads, Adam moments) and a reserve for kernels and the allocator. Measured on an H100
    for GPT-2 124M compiled: peak 15.3 GiB at 30 sequences, 27.3 GiB at 60 (0.40 GiB per
    sequence; the estimate says 0.53), so auto picks 60 there: 468K against 462K tokens/s.
    """
    if device.type != "cuda":
        return per_rank
    free, _ = torch.cuda.mem_get_info(device)
    budget = 0.7 * free - 16 * n_params - 2e9
    per_seq = (34 * cfg.n_embd * cfg.n_layer + (4 if compiled else 12) * cfg.padded_vocab_size) * cfg.block_size
    for d in sorted(_divisors(per_rank), reverse=True):
        if d * per_seq <= budget:
            return d
    return 1


def attention_kernels(name: str, device: torch.device):
    """A context in which SDPA tries `name`'s kernel first (train.attention); auto: torch's own order.

    Every kernel computes the same function (bf16 operands, fp32 accumulation); they differ
    in speed and in rounding. Entered before the first step, so the compiled graph is traced
    with the chosen kernel. With torch 2.11 on an H100, auto already runs cuDNN's kernel.
    """
    if name == "auto" or device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    kernels = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    first = kernels.pop(name)
    return sdpa_kernel([first, *kernels.values()], set_priority=True)


def fused_loss_dtype(name: str, device: torch.device, dtype: torch.dtype) -> torch.dtype | None:
    """The dtype the training loss runs fused with the head in (train.loss_kernel), or None: plain.

    auto: fused on CUDA under bf16 autocast when Triton is there. (fused with float16 is refused
    when the recipe loads: the fused loss forms the logits' gradient before GradScaler's scale.)
    """
    from ..model.kernels import triton_available

    if name == "torch" or (name == AUTO and not (device.type == "cuda" and dtype == torch.bfloat16
                                                 and triton_available())):
        return None
    return dtype


def fused_kernels(name: str, device: torch.device) -> bool:
    """Whether the model runs its fused operations (train.norm_kernel; GPT.fused_kernels: the MLP's bias and
    GELU, c_attn's joined gradients, attnres's aggregations, Hyper-Connections' folded norms, and Pre-LN's residual
    add with the next norm; which of them a model takes depends on its width: GPT.fused_kernels).

    auto: on CUDA when Triton is there (elsewhere the compiled layers do as well).
    """
    from ..model.kernels import chosen

    return chosen(name, device)


def git_commit() -> str | None:
    src = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


class RunLog:
    """Rank 0's view: log file, metrics.jsonl, terminal bar or plain lines."""

    def __init__(self, run_dir: Path, max_iters: int):
        self.run_dir = run_dir
        self.log_file = open(run_dir / "log.txt", "a", buffering=1)
        self.metrics_file = open(run_dir / METRICS, "a", buffering=1)
        self.max_iters = max_iters
        self.bar = None
        if interactive():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from ..console import console
            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[stats]}"), console=console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=max_iters, stats="")

    def line(self, msg: str) -> None:
        self.log_file.write(msg + "\n")
        if self.bar is not None:
            self.bar.console.print(msg)
        else:
            info(msg)

    def metrics(self, row: dict) -> None:
        self.metrics_file.write(json.dumps(row) + "\n")
        self.metrics_file.flush()
        parts = [f"step {row['step']}/{self.max_iters}"]
        if "train_loss" in row:
            parts.append(f"loss {row['train_loss']:.4f}")
        if "val_loss" in row:
            parts.append(f"val {row['val_loss']:.4f}")
        if "lr" in row:
            parts.append(f"lr {row['lr']:.2e}")
        if row.get("tokens_per_s"):
            parts.append(f"{row['tokens_per_s'] / 1e3:.1f}K tok/s")
        if row.get("mfu") is not None:
            parts.append(f"mfu {100 * row['mfu']:.1f}%")
        text = " | ".join(parts)
        self.log_file.write(text + "\n")
        if self.bar is not None:  # the bar keeps it short: loss, last val, throughput
            stats = f"loss {row['train_loss']:.3f}" if "train_loss" in row else ""
            if "val_loss" in row:
                stats += f" val {row['val_loss']:.3f}"
            if row.get("tokens_per_s"):
                stats += f" {row['tokens_per_s'] / 1e3:.1f}K tok/s"
            self.bar.update(self.task, completed=row["step"], stats=stats)
            if "val_loss" in row:
                self.bar.console.print(text)
        else:
            info(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.log_file.close()
        self.metrics_file.close()


@torch.no_grad()
def validation_loss(model, windows: np.ndarray, micro_batch: int, device: torch.device, autocast,
                    dinfo: DistInfo, fallback_model=None, training_graph: bool = False) -> float:
    """Mean next-token loss over the fixed validation windows, summed exactly over ranks.

    Each rank takes a contiguous slice; partial micro-batches go through `fallback_model`
    (the uncompiled module, or the model itself where it is compiled block by block: run with
    compilation off) so that no compiled graph sees a new shape.

    training_graph: the full micro-batches run the training forward (train mode, gradients on, the mean
    loss times the micro-batch's tokens; nothing is ever backpropagated), so that a compiled model runs the
    graph it trains with rather than compiling an inference graph: 12-14 s on an H100 for the 124M model,
    paid once a run (docs/performance.md, call BL). Only for a model whose train-mode forward computes what
    its eval-mode one does (no dropout), at the training micro-batch.
    """
    n = len(windows)
    lo, hi = dinfo.rank * n // dinfo.world_size, (dinfo.rank + 1) * n // dinfo.world_size
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    was_training = model.training
    for i in range(lo, hi, micro_batch):
        rows = torch.from_numpy(windows[i:min(i + micro_batch, hi)]).to(device, non_blocking=True)
        tokens = rows[:, 1:].numel()
        full = len(rows) == micro_batch or fallback_model is None
        m = model if full else fallback_model
        via_training = training_graph and full
        # set at each call: the fallback is the compiled model's own module, and a compiled graph is kept for
        # one mode
        m.train(via_training)
        if via_training:
            with torch.enable_grad(), autocast:
                loss = model(rows[:, :-1], rows[:, 1:])
            total += loss.detach().double() * tokens
            del loss  # its autograd graph holds the forward's saved activations
        else:
            # the fallback runs eagerly even where it is the model itself, compiled block by block
            with autocast, (contextlib.nullcontext() if full else torch.compiler.set_stance("force_eager")):
                total += m(rows[:, :-1], rows[:, 1:], reduction="sum").double()
        count += tokens
    if dinfo.enabled:
        dist.all_reduce(total)
        dist.all_reduce(count)
    model.train(was_training)
    if fallback_model is not None:
        fallback_model.train(was_training)
    return (total / count).item()


def val_on_training_graph(recipe: Recipe, use_compile: bool) -> bool:
    """Whether a run validates through its compiled training graph (validation_loss's training_graph): where
    train mode computes the eval-mode loss, no dropout, and no plugin module that might tell them apart."""
    return use_compile and recipe.model.dropout == 0 and not recipe.plugins


class Diverged(Exception):
    """The divergence guard stopped the run (exit status 3) before the update of step `step` + 1."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class _Verdict:
    """One step's divergence verdict, and with values=True its loss and gradient norm, copied to the host without
    waiting for them: reading them later waits for this step only, not for the work queued after it."""

    def __init__(self, step: int, bad: torch.Tensor, loss: torch.Tensor, grad_norm: torch.Tensor,
                 values: bool = False):
        self.step, self.loss, self.grad_norm = step, loss, grad_norm
        self._values = None
        if bad.device.type == "cuda":
            self._flag = torch.empty((), dtype=torch.bool, pin_memory=True)
            self._flag.copy_(bad, non_blocking=True)
            if values:
                self._values = torch.empty(2, dtype=torch.float32, pin_memory=True)
                self._values.copy_(torch.stack([loss.float(), grad_norm.float()]), non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._flag, self._event = bad, None

    def bad(self) -> bool:
        if self._event is not None:
            self._event.synchronize()
        return bool(self._flag)

    def values(self) -> tuple[float, float]:
        """The step's loss and gradient norm."""
        if self._values is not None:
            self._event.synchronize()
            loss, grad_norm = self._values.tolist()
            return loss, grad_norm
        return self.loss.item(), self.grad_norm.item()


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM held back until the block ends (then delivered: the handler raises after it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _WindowClock:
    """The logging windows' boundaries. On a GPU, CUDA events: a boundary is where the device finished the work
    queued before it, whenever the host gets to read it, so that a window closed a step late (a plain logging step's
    row) and one closed at once (validation) measure the same thing. Elsewhere the host's clock (the CPU computes as
    the host goes)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if self.cuda:
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        return end - start


def _gather_rng(dinfo: DistInfo, device: torch.device) -> list[dict]:
    mine = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(device)
    if not dinfo.enabled:
        return [mine]
    everyone = [None] * dinfo.world_size
    dist.all_gather_object(everyone, mine)
    return everyone


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """A resumed run rewrites the log lines of the steps it will do again."""
    path = run_dir / METRICS
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        atomic_write_text(path, "".join(line + "\n" for line in keep))


class MetricSinks:
    """Optional extra sinks for the metrics rows: TensorBoard, Weights & Biases."""

    def __init__(self, kind: str, run_dir: Path, run_id: str, recipe: Recipe):
        self.kind, self.writer = kind, None
        if kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        elif kind == "wandb":
            import wandb

            self.writer = wandb.init(project="gptablate", name=run_id, id=run_id, resume="allow",
                                     config=recipe.to_dict(), dir=str(run_dir))

    def write(self, row: dict) -> None:
        values = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}
        if self.kind == "tensorboard":
            for k, v in values.items():
                self.writer.add_scalar(k, v, row["step"])
        elif self.kind == "wandb":
            self.writer.log(values, step=row["step"])

    def close(self) -> None:
        if self.kind == "tensorboard":
            self.writer.close()
        elif self.kind == "wandb":
            self.writer.finish()


def check_log_backend(kind: str) -> None:
    import importlib.util

    module = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(kind)
    if module and importlib.util.find_spec(module) is None:
        raise UserError(f"train.log: {kind} needs the {module} package (pip install {module}), or set train.log=none")


def train(recipe: Recipe, run_dir: Path, run_id: str, device_request: str | None = None,
          store: ResultStore | None = None, resume: bool = False, checkpoints: bool = True) -> dict:
    """Train one run to the end (or on from its newest checkpoint). Returns the summary (rank 0).

    checkpoints=False writes neither resumable states nor the final checkpoint: bench's runs, which are thrown away
    (the end-of-run state alone is about 19 GB for 1.5B: weights and AdamW's moments in fp32)."""
    device_type = resolve_device(device_request)
    dinfo, device = init_distributed(device_type)
    t_start = time.time()
    run_dir = Path(run_dir)
    if dinfo.enabled:
        run_id = agree_on_run(recipe, run_id, run_dir, dinfo)
    log: RunLog | None = None
    sinks: MetricSinks | None = None
    registered = False
    store = store if store is not None else (ResultStore() if dinfo.is_main else None)
    previous_handler = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        raise Interrupted("terminated")

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
        # Past a file-size limit a write should fail with EFBIG, not kill the process unannounced.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (ValueError, AttributeError):  # not the main thread; no SIGXFSZ on this platform
        pass

    t, m = recipe.train, recipe.model
    if device.type == "cpu":
        keep_heap_memory()
    else:  # this run's own peak, also when one process runs several (bench --all-variants)
        torch.cuda.reset_peak_memory_stats(device)
    cfg = GPTConfig.from_recipe(recipe)
    torch.manual_seed(t.seed)  # every rank builds the same initial weights
    model = GPT(cfg).to(device)
    n_params = model.num_params()

    state, start_step = None, 0
    if resume:
        path = latest_train_state(run_dir)
        if path is None:
            raise UserError(f"{run_dir}: no checkpoint to resume from (set train.checkpoint_interval to write them)")
        state = load_checkpoint(path, map_location=device)
        if state.get("kind") != "train_state":
            raise UserError(f"{path}: not a resumable checkpoint")
        start_step = int(state["step"])
        if start_step >= t.max_iters:
            raise UserError(f"run {run_id} already finished all {t.max_iters} steps")
        if state["world_size"] != dinfo.world_size and m.dropout > 0:
            raise UserError(f"run {run_id} trained on {state['world_size']} rank(s); resuming on {dinfo.world_size} "
                            "would change its dropout random streams: resume with the same --gpus")
        model.load_state_dict(state["model"])

    use_compile = (device.type == "cuda") if t.compile == AUTO else bool(t.compile)
    micro = (auto_micro_batch(cfg, t.batch_size // dinfo.world_size, device, n_params, use_compile)
             if t.micro_batch == AUTO else None)
    plan = plan_batch(t, dinfo.world_size, micro)
    dataset = open_dataset(data_root() / recipe.data.dataset)
    batches = TrainBatches(dataset, m.block_size, t.seed, t.batch_size, dinfo.rank, dinfo.world_size,
                           plan.micro_batch, device)
    windows = val_windows(dataset, m.block_size, recipe.data.eval_tokens)

    kernels = contextlib.ExitStack()  # entered where the loop starts (compilation happens at the first step)
    model.fused_kernels = fused_kernels(t.norm_kernel, device)  # before compiling: its options depend on it
    graph_form = ddp_graph_form(t.ddp_graph, n_params, dinfo.world_size,
                                int(os.environ.get("LOCAL_WORLD_SIZE", dinfo.world_size)))
    if dinfo.enabled and use_compile:  # read when dynamo traces the DDP-wrapped model (each rank is its own process)
        torch._dynamo.config.optimize_ddp = DDP_GRAPH[graph_form]
    unit = compile_unit(t.compile_unit, model.blocks_compilable(), dinfo.world_size) if use_compile else None
    compiled = model.compiled(unit) if use_compile else model
    ddp_model = compiled
    if dinfo.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            compiled, device_ids=[device.index] if device.type == "cuda" else None,
            bucket_cap_mb=t.ddp_bucket_mb, gradient_as_bucket_view=t.ddp_bucket_view)
    # Gradients that are bucket views stay views when zeroed in place; set to None, every
    # backward would allocate them afresh and DDP would copy them into its buckets again.
    grads_to_none = not (dinfo.enabled and t.ddp_bucket_view)
    optimizer = make_optimizer(model, t, device.type)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state["world_size"] == dinfo.world_size:
            rng = state["rng"][dinfo.rank]
            torch.set_rng_state(rng["cpu"].cpu())
            if device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"].cpu(), device)
    if device.type == "cuda":
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[t.dtype]
        autocast = torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        dtype, autocast = torch.float32, contextlib.nullcontext()  # the CPU trains in fp32
    model.fused_loss_dtype = fused_loss_dtype(t.loss_kernel, device, dtype)
    scaler = torch.amp.GradScaler("cuda", enabled=(device.type == "cuda" and dtype == torch.float16))

    matmul_flops = measure_matmul_flops(device)
    peak_flops = datasheet_peak(device)
    flops_per_token = model.flops_per_token()
    tokens_per_step = t.batch_size * m.block_size
    max_loss = t.max_loss if t.max_loss is not None else 2 * math.log(m.vocab_size)

    def write_state(done: int, val: float | None) -> None:
        rng = _gather_rng(dinfo, device)  # a collective: every rank calls it
        if dinfo.is_main:
            save_train_state(run_dir, done, {"run_id": run_id, "recipe": recipe.to_dict(), "model": model.state_dict(),
                                             "optimizer": optimizer.state_dict(), "rng": rng,
                                             "world_size": dinfo.world_size, "val_loss": val}, t.keep_checkpoints)
            store.update_run(run_id, step=done, tokens=done * tokens_per_step)  # progress a resume starts from

    if dinfo.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            _truncate_metrics(run_dir, start_step)
            for partial in (run_dir / STATE_DIR).glob(".step_*.tmp*"):  # a write the kill cut short
                partial.unlink()
        log = RunLog(run_dir, t.max_iters)
        if resume:
            store.update_run(run_id, status="running", pid=os.getpid(), note=None)
        else:
            store.start_run(run_id, recipe, dinfo.world_size, device_type, run_dir, git_commit(), n_params)
        registered = True
        sinks = MetricSinks(t.log, run_dir, run_id, recipe)
        log.line(f"run {run_id}  arm {recipe.arm_label()}  on {dinfo.world_size} x {device_type}"
                 f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}"
                 + (f"  resumed at step {start_step}" if resume else ""))
        graph_text = ""
        if dinfo.enabled and unit == "model":  # by block, DDP wraps the eager model: no graph to cut
            graph_text = f" (DDP graph: {graph_form}{' by auto' if t.ddp_graph == AUTO else ''})"
        log.line(f"model: {n_params / 1e6:.2f}M parameters (nanoGPT count), {flops_per_token / 1e9:.3f} GFLOP/token; "
                 f"batch {t.batch_size} = {dinfo.world_size} rank(s) x {plan.accum_steps} micro-step(s) x "
                 f"{plan.micro_batch} sequence(s) x {m.block_size} tokens; compile={use_compile}"
                 f"{' (by block)' if unit == 'block' else ''}"
                 f"{graph_text}, "
                 f"loss={'fused' if model.fused_loss_dtype is not None else 'torch'}")
        peak_text = f", datasheet {peak_flops / 1e12:.0f}" if peak_flops else ""
        log.line(f"matmul rate measured {matmul_flops / 1e12:.1f} TFLOP/s{peak_text}; "
                 f"validation: {len(windows)} windows ({len(windows) * m.block_size:,} tokens)")

    status, note, step = "failed", None, start_step
    val_loss = state.get("val_loss") if state else None
    clock = _WindowClock(device)
    window_tokens, window_start = 0, None  # the tokens and the start boundary of the logging window open now
    steady_tokens, steady_time = 0, 0.0
    skips = 0
    summary: dict = {}
    # The divergence guard decides on the device: the fused AdamW skips a bad step's update
    # itself (its found_inf input), and the host reads the verdict a step later, once the next
    # step's work is queued, so the loop makes no host sync of its own. (fp16's GradScaler
    # decides on the host, as it always has.)
    # (Every group: a resumed optimizer takes its groups' options from the checkpoint.)
    device_guard = all(g.get("fused") for g in optimizer.param_groups) and not scaler.is_enabled()
    pending: _Verdict | None = None

    def settle(verdict: _Verdict | None) -> bool:
        """Act on a step's verdict: False if the step was good, True if it was skipped; raises on stop."""
        nonlocal skips, note
        if verdict is None or not verdict.bad():
            return False
        reason = (f"loss {verdict.loss.item():.4g}, grad norm {verdict.grad_norm.item():.4g} at step "
                  f"{verdict.step + 1} (max_loss {max_loss:.4g})")
        if t.on_divergence == "skip" and skips < t.max_skips:
            skips += 1
            if log:
                log.line(f"divergence guard: skipped step {verdict.step + 1} ({skips}/{t.max_skips}): {reason}")
            return True
        kept = latest_train_state(run_dir)
        note = (f"diverged: {reason}; "
                + (f"last good checkpoint {kept.name}" if kept else "no checkpoint had been written yet"))
        raise Diverged(note, verdict.step)

    # A plain logging step's window (done, lr, verdict, tokens, start, end), whose row is written once the next step's
    # forward and backward are queued: reading its loss then waits for that step only, while the device runs the next
    # one, where reading it at once left the device idle while the host logged, gathered the next batch and launched
    # its forward (3-4.7 ms a logging step on an H100, docs/performance.md, call BU).
    deferred: tuple | None = None

    def write_row(done: int, lr: float, verdict: _Verdict, tokens: int, start, end, skipped: bool,
                  is_eval: bool) -> None:
        """Close a logging window: its metrics row (validation first where is_eval), on every rank."""
        nonlocal steady_tokens, steady_time, val_loss
        train_loss, grad_norm = verdict.values()
        elapsed = clock.seconds(start, end)
        tok_s = tokens / elapsed if elapsed > 0 else 0.0
        if done > start_step + t.log_interval:  # the first window holds compilation: not steady state
            steady_tokens += tokens
            steady_time += elapsed
        row = {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "lr": lr,
               "grad_norm": grad_norm, "tokens_per_s": tok_s,
               "mfu": flops_per_token * tok_s / (dinfo.world_size * matmul_flops)}
        if skipped:
            row["skipped"] = True
        if peak_flops:
            row["mfu_peak"] = flops_per_token * tok_s / (dinfo.world_size * peak_flops)
        if device.type == "cuda":
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30  # rank 0's
        if is_eval:
            collector.pause()  # a first validation in eval mode compiles its graph
            t_val = time.perf_counter()
            val_loss = validation_loss(compiled, windows, plan.micro_batch, device, autocast, dinfo,
                                       fallback_model=model if use_compile else None,
                                       training_graph=val_on_training_graph(recipe, use_compile))
            row["val_loss"] = val_loss
            row["val_s"] = time.perf_counter() - t_val
            collector.settle()
        row["gc_ms"] = 1e3 * collector.take()  # time in Python's garbage collector in this window
        row["elapsed_s"] = time.time() - t_start  # wall clock since the process began this run
        if log:
            log.metrics(row)
            sinks.write(row)

    try:
        kernels.enter_context(attention_kernels(t.attention, device))
        collector = kernels.enter_context(CollectorClock())
        collector.pause()  # the first step compiles; settled after it
        model.train()
        window_start = clock.mark()
        for step in range(start_step, t.max_iters):
            lr = lr_at(step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_mult"]
            model.set_step(step)
            loss_sum = torch.zeros((), device=device)
            for micro_step in range(plan.accum_steps):
                x, y = batches.get(step, micro_step)
                last_micro = micro_step == plan.accum_steps - 1
                sync = ddp_model.no_sync() if (dinfo.enabled and not last_micro) else contextlib.nullcontext()
                with sync:
                    with autocast:
                        loss = ddp_model(x, y) / plan.accum_steps
                    scaler.scale(loss).backward()
                loss_sum += loss.detach()
            with _signals_held():  # an interrupt comes before or after: the previous row is written once, whole
                # the previous step's verdict: long computed, this step's work queued behind it
                previous_skipped = settle(pending)
                pending = None
                if deferred is not None:  # the previous step's row, now that this step's work is queued
                    window, deferred = deferred, None
                    write_row(*window, previous_skipped, False)
            if dinfo.enabled:  # every rank sees the same mean loss, so every rank takes the same decision
                dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
                loss_sum /= dinfo.world_size
            scaler.unscale_(optimizer)
            if t.grad_clip > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            else:
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
            bad = ~torch.isfinite(loss_sum) | (~torch.isfinite(grad_norm) if not scaler.is_enabled() else False)
            if step >= t.warmup_iters:
                bad = bad | (loss_sum > max_loss)
            done = step + 1
            is_last = done == t.max_iters
            is_eval = done % recipe.data.eval_interval == 0 or is_last
            logs = done % t.log_interval == 0 or is_eval
            saves = checkpoints and (bool(t.checkpoint_interval and done % t.checkpoint_interval == 0) or is_last)
            skipped, late = False, False
            if device_guard:
                optimizer.found_inf = bad.float()  # a bad step's update never lands
                optimizer.step()
                optimizer.zero_grad(set_to_none=grads_to_none)
                verdict = pending = _Verdict(step, bad, loss_sum, grad_norm, values=logs)
                end = clock.mark() if logs else None  # the window closes where the device finishes this step
                late = logs and not (is_eval or saves)  # a plain logging step: its row waits for the next step
                if is_eval or saves:  # validation and checkpoints read the device anyway: settle now
                    skipped = settle(pending)
                    pending = None
            else:
                verdict = _Verdict(step, bad, loss_sum, grad_norm, values=logs)
                skipped = settle(verdict)
                if not skipped:
                    scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=grads_to_none)
                end = clock.mark() if logs else None
            # A skipped step still counts: validation, checkpoints and the end come on schedule.
            window_tokens += tokens_per_step
            if done == start_step + 1:  # compiled now (the first window is not steady state anyway)
                collector.settle()
            if logs:
                window = (done, lr, verdict, window_tokens, window_start, end)
                window_tokens = 0
                if late:
                    deferred, window_start = window, end
                else:
                    write_row(*window, skipped, is_eval)
                    window_start = clock.mark()  # after validation: the next window starts now
            if saves:
                write_state(done, val_loss)
        step = t.max_iters
        status = "finished"
        steady = steady_tokens / steady_time if steady_time > 0 else float("nan")
        summary = dict(step=t.max_iters, tokens=t.max_iters * tokens_per_step, val_loss=val_loss,
                       wall_s=time.time() - t_start, tokens_per_s=steady,
                       mfu=flops_per_token * steady / (dinfo.world_size * matmul_flops))
        if dinfo.is_main:
            if checkpoints:
                save_checkpoint(run_dir / CHECKPOINT, model, recipe, t.max_iters, run_id,
                                extra={"val_loss": val_loss, "arm": recipe.arm_label(), "arm_hash": recipe.arm_hash(),
                                       "plugins": plugin_sources(recipe.plugins)})
            if steady_time > 0:
                speed = (f"{steady / 1e3:.1f}K tokens/s steady, mfu {100 * summary['mfu']:.1f}% of measured matmul"
                         + (f", {100 * steady * flops_per_token / (dinfo.world_size * peak_flops):.1f}% of datasheet"
                            if peak_flops else ""))
            else:  # a run of one logging window: it holds compilation, so no steady rate
                speed = (f"no steady tokens/s: its {t.max_iters - start_step} steps fell in the first logging window "
                         f"(train.log_interval={t.log_interval}), which holds compilation")
            log.line(f"finished: val loss {val_loss:.4f}, {speed}"
                     + (f"; checkpoint {run_dir / CHECKPOINT}" if checkpoints else ""))
            store.update_run(run_id, status="finished", **summary)
        if recipe.eval.tasks:  # every rank scores its share; rank 0 records
            from ..eval.run import evaluate_model, record, report

            e = recipe.eval
            metrics = evaluate_model(model, recipe, list(e.tasks), device, dinfo, e.batch_size,
                                     Path(e.data_dir) if e.data_dir else None, e.limit)
            if dinfo.is_main:
                log.line(report(metrics, run_id, "table"))
                for line in record(store, run_id, metrics):
                    log.line(line)
        return summary
    except Diverged as e:
        status, step = "diverged", e.step  # steps done: those before the bad one
        raise
    except (KeyboardInterrupt, Interrupted):
        status = "interrupted"
        if deferred is not None and pending is deferred[2]:  # the last logged step's row, not yet written: write it
            with contextlib.suppress(Exception):
                write_row(*deferred, settle(pending), False)
        raise
    except UserError as e:
        note = str(e)
        raise
    except torch.cuda.OutOfMemoryError:
        smaller = [d for d in _divisors(plan.per_rank) if d < plan.micro_batch]
        note = (f"CUDA out of memory at micro-batch {plan.micro_batch} per rank: set train.micro_batch to a smaller "
                f"divisor of {plan.per_rank} ({', '.join(map(str, smaller[-3:])) or '1'})")
        raise UserError(note) from None
    finally:
        if status != "finished" and dinfo.is_main and registered:
            try:
                store.update_run(run_id, status=status, step=step, tokens=step * tokens_per_step,
                                 wall_s=time.time() - t_start, note=note)
            except UserError:
                pass  # the first error is the one to report
            log.line(f"run {run_id} {status} at step {step}" + (f": {note}" if note else ""))
        kernels.close()
        if sinks:
            sinks.close()
        if log:
            log.close()
        try:
            signal.signal(signal.SIGTERM, previous_handler)
        except (ValueError, TypeError):
            pass
