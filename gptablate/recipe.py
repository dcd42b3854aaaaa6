"""Recipes: YAML files checked against a typed schema, with `base:` inheritance and `--set`.

A recipe is plain data. Loading does, in order:
  1. read the YAML with the safe loader (no tags, no code);
  2. resolve `base:` (relative to the including file, then among the built-in recipes)
     and deep-merge the child over the base;
  3. apply `--set a.b=value` overrides (values parsed as YAML: 3e-4, true, [0.9, 0.95]);
  4. validate every key and type against the dataclasses below, naming the file and key;
  5. freeze into a `Recipe`.

Nothing in a recipe ever imports code.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import UserError

AUTO = "auto"


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024  # context length T
    vocab_size: int = 50257  # GPT-2 BPE; padded to a multiple of 64 inside the model
    bias: bool = True  # GPT-2 has biases in Linear and LayerNorm
    dropout: float = 0.0  # 0 for pretraining: one epoch never overfits


@dataclass(frozen=True)
class ArchConfig:
    # Names resolved through gptablate.model.registry only when the model is built, so a
    # recipe stays plain, serialisable data (litgpt's habit).
    norm: str = "layernorm"
    block: str = "pre"
    residual: str = "vanilla"
    qk_norm: bool = False  # RMS-normalise q and k per head, no parameters, the 1/√d scale kept (modded-nanogpt)
    # ResFormer (Zhou et al. 2024, arXiv 2410.17897): layers 2..L attend to (1 − λ_l)·v_l + λ_l·v_1, λ_l learned from 0.5
    value_residual: bool = False
    # A variant's own settings: a section named after it (arch.hyper: {n: 4}), validated
    # against that variant's Settings dataclass, defaults filled in for the chosen ones.
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    max_iters: int = 5000
    batch_size: int = 60  # global: sequences per optimizer step, whatever the rank count
    micro_batch: Union[int, Literal["auto"]] = AUTO  # per rank per forward
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_iters: int = 250
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1  # applied to >=2-D weights only
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0 disables clipping
    seed: int = 1
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"  # autocast dtype on GPU
    compile: Union[bool, Literal["auto"]] = AUTO  # auto: on for CUDA, off for the CPU
    # What torch.compile takes as its unit: "model", one graph; "block", the embeddings with the first norm and one
    # block whose graph serves every block (GPT.compile_blocks; Pre-LN blocks on the vanilla residual with the fused
    # operations only: other models compile as one graph whatever this says). block compiled 124M 22 s faster cold
    # on an H100 and stepped as fast (docs/performance.md, calls BX, BY); auto: block on one process, model under
    # DDP (there block stepped 1.5-1.8% slower on 2 H200s, call CC).
    compile_unit: Literal["auto", "model", "block"] = AUTO
    attention: Literal["auto", "flash", "cudnn", "efficient", "math"] = "auto"  # SDPA kernel tried first on GPU
    # The training loss: "fused" computes logits, cross-entropy and its gradient in one pass over
    # the logits (model/loss.py; a Triton kernel on CUDA); "torch" is F.cross_entropy; auto:
    # fused on CUDA under bf16 when Triton is installed.
    loss_kernel: Literal["auto", "fused", "torch"] = "auto"
    # The fused operations (GPT.fused_kernels; Triton kernels on CUDA): at widths up to 1,024, every
    # variant's MLP bias and GELU as one operation, c_attn's q/k/v gradients joined in one
    # kernel, and Pre-LN's residual add and the next norm as one operation (LayerNorm or RMSNorm,
    # vanilla or LAuReL-LR residual, no dropout); at any width, attnres's aggregations and
    # Hyper-Connections' sites' norms folded into their stream steps. "torch": the layers as
    # written; auto: fused on CUDA when Triton is installed.
    norm_kernel: Literal["auto", "fused", "torch"] = "auto"
    # DDP (several ranks): gradient bucket size in MB, and gradients kept as views into the
    # buckets (no copy into the buckets, no per-step gradient allocation).
    ddp_bucket_mb: int = 25
    ddp_bucket_view: bool = True
    # How torch.compile meets DDP: "split" (dynamo's DDPOptimizer) cuts the compiled graph at the
    # buckets so that each bucket's all-reduce starts during the backward; "whole" compiles one
    # graph and all-reduces every bucket once the backward is done; "auto": whole for models under
    # 800M parameters on one node (where it measured faster), split otherwise.
    ddp_graph: Literal["auto", "split", "whole"] = AUTO
    log_interval: int = 10
    checkpoint_interval: int = 0  # steps between resumable checkpoints; 0: only at the end
    keep_checkpoints: int = 2  # the newest k resumable checkpoints are kept
    # Divergence guard: a non-finite loss or gradient norm, or a loss above max_loss after
    # warmup (default 2·ln(vocab)), stops the run, or skips the step up to max_skips times.
    max_loss: typing.Optional[float] = None
    on_divergence: Literal["stop", "skip"] = "stop"
    max_skips: int = 3
    log: Literal["none", "tensorboard", "wandb"] = "none"  # an extra metrics sink


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fineweb10B"  # folder under $GPTABLATE_DATA
    eval_interval: int = 500
    eval_tokens: int = 10_485_760  # fixed prefix of the validation shard


@dataclass(frozen=True)
class EvalConfig:
    """Tasks to run when training ends (what `gptablate eval` runs; names as in its --tasks)."""

    tasks: tuple[str, ...] = ()
    data_dir: typing.Optional[str] = None  # a local copy of the datasets instead of the hub
    limit: typing.Optional[int] = None
    batch_size: typing.Optional[int] = None


@dataclass(frozen=True)
class RunConfig:
    name: typing.Optional[str] = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    name: str  # the recipe file's stem: the leaderboard's arm starts with it
    model: ModelConfig = field(default_factory=ModelConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # Python files of the user's that register new norms, blocks or residual strategies:
    # the one way a recipe runs code, and only because it names them (absolute paths).
    plugins: tuple[str, ...] = ()
    # `--set` overrides as given (key, value): they label the arm, e.g. tiny[train.lr=0.003]
    overrides: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict:
        """Plain dict of the science and run settings (what gets saved and printed)."""
        out = {"name": self.name}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        for section in SECTIONS:
            out[section] = _plain(dataclasses.asdict(getattr(self, section)))
        settings = out["arch"].pop("settings")
        out["arch"].update(settings)  # back to the YAML shape: arch.hyper: {...}
        if self.overrides:
            out["overrides"] = [[k, v] for k, v in self.overrides]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    # -- arms: which runs are the same experiment

    def science(self) -> dict:
        """The settings that change what is trained or how it is scored."""
        d = self.to_dict()
        d.pop("overrides", None)
        d.pop("run", None)
        d.pop("eval", None)  # what is measured after training does not change what is trained
        for section, key in NON_SCIENCE_KEYS:
            d.get(section, {}).pop(key, None)
        for variant, key in NON_SCIENCE_VARIANT_KEYS:
            if isinstance(d["arch"].get(variant), dict):
                d["arch"][variant].pop(key, None)
        for (variant, key), before in LATER_VARIANT_KEYS.items():
            if isinstance(d["arch"].get(variant), dict) and d["arch"][variant].get(key) == before:
                del d["arch"][variant][key]
        # Settings of variants the model does not use change nothing; a plug-in's code does.
        used = {self.arch.norm, self.arch.block, self.arch.residual}
        for name in list(d["arch"]):
            if name in self.arch.settings and name not in used:
                del d["arch"][name]
        if self.plugins:
            d["plugins"] = {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest()
                            if Path(p).is_file() else None for p in self.plugins}
        return d

    def arm_hash(self) -> str:
        blob = json.dumps(self.science(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def arm_label(self) -> str:
        science_overrides: dict[str, Any] = {}  # a key set twice shows once, with the value that took
        for k, v in self.overrides:
            variant_key = tuple(k.split(".")[1:]) if k.startswith("arch.") else None  # as science() reads them
            if (tuple(k.split(".", 1)) not in NON_SCIENCE_KEYS and variant_key not in NON_SCIENCE_VARIANT_KEYS
                    and not k.startswith(("run.", "eval."))):
                science_overrides[k] = v
        if not science_overrides:
            return self.name
        inner = ",".join(f"{k}={_format_value(v)}" for k, v in science_overrides.items())
        return f"{self.name}[{inner}]"


SECTIONS = ("model", "arch", "train", "data", "eval", "run")
SECTION_TYPES = {
    "model": ModelConfig,
    "arch": ArchConfig,
    "train": TrainConfig,
    "data": DataConfig,
    "eval": EvalConfig,
    "run": RunConfig,
}
# Settings that never change the trained model or its score: runs that differ only here are
# seeds of one arm. (Device and rank count are not recipe keys at all.)
# The same for a variant's own settings (arch.<variant>.<key>): how it is computed, not what.
NON_SCIENCE_VARIANT_KEYS = {("hyper", "kernel"), ("mhc", "kernel")}
# A variant's settings added after runs of it were recorded, with the value those runs had: at that value a setting is
# left out of the arm's hash, so that runs before it and after it stay one arm; at any other it is science.
LATER_VARIANT_KEYS = {("hyper", "stream_dtype"): "float32", ("mhc", "stream_dtype"): "float32"}
NON_SCIENCE_KEYS = {
    ("train", "seed"),
    ("train", "micro_batch"),
    ("train", "compile"),
    ("train", "compile_unit"),
    ("train", "attention"),
    ("train", "loss_kernel"),
    ("train", "norm_kernel"),
    ("train", "ddp_bucket_mb"),
    ("train", "ddp_bucket_view"),
    ("train", "ddp_graph"),
    ("train", "log_interval"),
    ("train", "checkpoint_interval"),
    ("train", "keep_checkpoints"),
    ("train", "max_loss"),  # the guard only acts on runs that have already gone wrong
    ("train", "on_divergence"),
    ("train", "max_skips"),
    ("train", "log"),
    ("data", "eval_interval"),
}


def _plain(obj):
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _format_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_format_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --------------------------------------------------------------------------- locating files


def builtin_recipe_dir() -> Path:
    """Built-in recipes ship inside the package (gptablate/recipes links to ../recipes)."""
    return Path(__file__).resolve().parent / "recipes"


def builtin_recipes() -> list[str]:
    d = builtin_recipe_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def find_recipe(ref: str, relative_to: Path | None = None) -> Path:
    """A path (absolute, or relative to the including file / the cwd) or a built-in name."""
    candidates = []
    p = Path(ref)
    if relative_to is not None and not p.is_absolute():
        candidates.append(relative_to.parent / p)
    candidates.append(p)
    name = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    candidates.append(builtin_recipe_dir() / name)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    known = ", ".join(builtin_recipes()) or "none installed"
    where = f" (included from {relative_to})" if relative_to else ""
    raise UserError(f"recipe '{ref}' not found{where}: give a path to a .yaml file or a built-in name ({known})")


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read recipe: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe must be a mapping of sections (model, arch, train, data, run), got {type(data).__name__}")
    return data


def _deep_merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _load_raw(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, dict[str, Path]]:
    """Returns the merged mapping and, for error messages, which file set each key."""
    if path in chain:
        cycle = " -> ".join(str(p.name) for p in chain + (path,))
        raise UserError(f"{path}: circular base: {cycle}")
    data = _read_yaml(path)
    origin: dict[str, Path] = {}
    base_ref = data.pop("base", None)
    merged: dict = {}
    if base_ref is not None:
        if not isinstance(base_ref, str):
            raise UserError(f"{path}: key 'base' must be a recipe path or name (a string), got {base_ref!r}")
        base_path = find_recipe(base_ref, relative_to=path)
        merged, origin = _load_raw(base_path, chain + (path,))
    for key_path in _leaf_paths(data):
        origin[key_path] = path
    return _deep_merge(merged, data), origin


def _leaf_paths(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_leaf_paths(v, p + "."))
        out.append(p)
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """'train.lr=3e-4' -> ('train.lr', 0.0003); values are YAML-typed."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.lr=3e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.lr=3e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads 3e-4 as a string (it wants 3.0e-4); numbers are what users mean.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return key, value


def _set_path(d: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


ARM_REF = re.compile(r"(?P<name>[^\[\]]+)\[(?P<inner>.+)\]")
NEXT_OVERRIDE = re.compile(r",(?=\s*[A-Za-z_]\w*(?:\.\w+)+\s*=)")  # a comma before the next dotted key


def split_arm(ref: str) -> tuple[str, list[str]]:
    """A recipe written as compare labels its arm, 'tiny[train.lr=0.001,arch.norm=rmsnorm]', as the recipe and its
    overrides: ('tiny', ['train.lr=0.001', 'arch.norm=rmsnorm']). A list value's commas stay inside it
    ('tiny[train.betas=[0.9,0.99]]'). Any other ref: (ref, [])."""
    m = ARM_REF.fullmatch(ref)
    if m is None or Path(ref).is_file():
        return ref, []
    return m["name"], [item.strip() for item in NEXT_OVERRIDE.split(m["inner"])]


def load_recipe(ref: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """A recipe file or built-in name, or an arm's label (`split_arm`), with the overrides (`--set`) after its own."""
    label = str(ref)
    ref, own = split_arm(label)
    path = find_recipe(ref)
    raw, origin = _load_raw(path)
    parsed = []
    for o, source in [*((o, label) for o in own), *((o, "--set") for o in overrides)]:
        try:
            key, value = parse_override(o)
        except UserError:  # its message speaks of --set
            if source == "--set":
                raise
            raise UserError(f"recipe {label!r}: {o!r} is not KEY=VALUE; an arm is written as compare labels it, "
                            "NAME[key=value,...], e.g. tiny[train.lr=0.001,arch.norm=rmsnorm]") from None
        _set_path(raw, key, value)
        origin[key] = Path(source)
        parsed.append((key, value))
    return build_recipe(raw, name=path.stem, origin=origin, default_file=path, overrides=tuple(parsed))


def recipe_from_dict(d: dict) -> Recipe:
    """Rebuild a saved recipe (checkpoint, run directory) exactly as it was resolved."""
    d = dict(d)
    name = d.pop("name", "recipe")
    overrides = tuple((k, v) for k, v in d.pop("overrides", []) or [])
    # A checkpoint holds what was trained: the variant settings' ranges guard new recipes, and a run trained before a
    # range was set (arch.mhc.iters=0) stays loadable, to evaluate or resume.
    return build_recipe(d, name=name, origin={}, default_file=Path("<saved recipe>"), overrides=overrides,
                        bounds=False)


def build_recipe(raw: dict, name: str, origin: dict, default_file: Path, overrides=(), bounds: bool = True) -> Recipe:
    def where(key: str) -> str:
        return str(origin.get(key, default_file))

    raw = dict(raw)
    plugins = _resolve_plugins(raw.pop("plugins", None) or [], origin, default_file, where)
    sections = {}
    for section, value in raw.items():
        if section not in SECTION_TYPES:
            raise UserError(f"{where(section)}: unknown key '{section}'{_suggest(section, SECTION_TYPES)}; "
                            f"top-level keys are base, plugins, {', '.join(SECTIONS)}")
        if not isinstance(value, dict):
            raise UserError(f"{where(section)}: key '{section}' must be a mapping, got {_describe(value)}")
        sections[section] = _build_section(section, SECTION_TYPES[section], value, where, bounds)
    recipe = Recipe(name=name, overrides=tuple(overrides), plugins=plugins, **sections)
    _check_shapes(recipe, where)
    return recipe


def _build_section(section: str, cls, values: dict, where, bounds: bool = True) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    variants = _variant_settings() if cls is ArchConfig else {}
    kwargs, settings = {}, {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        if key in variants:
            if not isinstance(value, dict):
                raise UserError(f"{where(dotted)}: key '{dotted}' must be a mapping of {key}'s settings "
                                f"({', '.join(f.name for f in dataclasses.fields(variants[key]))}), got {_describe(value)}")
            settings[key] = value
            continue
        if key not in hints or key == "settings":
            options = {f"{section}.{n}": None for n in names + list(variants) if n != "settings"}
            raise UserError(f"{where(dotted)}: unknown key '{dotted}'{_suggest(dotted, options)}")
        kwargs[key] = _coerce(dotted, value, hints[key], where)
    obj = cls(**kwargs)
    from .model.registry import out_of_bounds

    bad = out_of_bounds(obj) if bounds else None
    if bad:
        dotted = f"{section}.{bad[0]}"
        raise UserError(f"{where(dotted)}: key '{dotted}' {bad[1]}")
    if cls is ArchConfig:
        # Validate every given section; fill in the defaults of the variants in use.
        for name in (obj.norm, obj.block, obj.residual):
            if name in variants:
                settings.setdefault(name, {})
        resolved = {}
        for name, given in settings.items():
            built = _build_section(f"arch.{name}", variants[name], given, where, bounds)
            resolved[name] = _plain(dataclasses.asdict(built))
        obj = dataclasses.replace(obj, settings=resolved)
    return obj


def _variant_settings() -> dict[str, type]:
    """name -> Settings dataclass of every registered variant that has settings."""
    from .model.registry import all_settings  # registers the built-ins on first use

    return all_settings()


def _resolve_plugins(items, origin, default_file: Path, where) -> tuple[str, ...]:
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UserError(f"{where('plugins')}: key 'plugins' must be a list of Python file paths, got {_describe(items)}")
    declared_in = origin.get("plugins", default_file)
    out = []
    for item in items:
        path = Path(item)
        if not path.is_absolute():
            path = Path(declared_in).parent / path
        from .plugins import is_loaded, load_plugin

        if not (path.is_file() and path.suffix == ".py") and not is_loaded(path):
            raise UserError(f"{declared_in}: plug-in '{item}' is not a Python file (looked for {path})")
        out.append(str(path.resolve()) if path.exists() else str(path))

    for p in out:
        load_plugin(Path(p))
    return tuple(out)


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"


def type_name(tp) -> str:
    """What a recipe key of this type accepts, in words: 'an integer', "'auto' or 'fused'", 'a number or null'."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union:
        return " or ".join(type_name(a) for a in typing.get_args(tp) if a is not type(None)) + (
            " or null" if type(None) in typing.get_args(tp) else "")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(type_name(a) for a in args)})"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


class _Mismatch(Exception):
    pass


def _coerce(key: str, value, tp, where):
    try:
        return _coerce_inner(value, tp)
    except _Mismatch:
        raise UserError(f"{where(key)}: key '{key}' must be {type_name(tp)}, got {_describe(value)}") from None


def _coerce_inner(value, tp):
    origin = typing.get_origin(tp)
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin is Union:
        for arg in typing.get_args(tp):
            try:
                return _coerce_inner(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}:
            return value
        raise _Mismatch
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce_inner(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_coerce_inner(v, a) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)  # 1e6 in YAML is a float; an integer was meant
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


def _check_shapes(r: Recipe, where) -> None:
    m, t, d = r.model, r.train, r.data
    positive = [("model.n_layer", m.n_layer), ("model.n_head", m.n_head), ("model.n_embd", m.n_embd),
                ("model.block_size", m.block_size), ("model.vocab_size", m.vocab_size),
                ("train.max_iters", t.max_iters), ("train.batch_size", t.batch_size),
                ("train.log_interval", t.log_interval), ("train.ddp_bucket_mb", t.ddp_bucket_mb),
                ("data.eval_interval", d.eval_interval),
                ("data.eval_tokens", d.eval_tokens)]
    for key, value in positive:
        if value <= 0:
            raise UserError(f"{where(key)}: key '{key}' must be positive, got {value}")
    if t.micro_batch != AUTO and t.micro_batch <= 0:
        raise UserError(f"{where('train.micro_batch')}: key 'train.micro_batch' must be positive or 'auto', got {t.micro_batch}")
    if m.n_embd % m.n_head:
        divisors = [h for h in range(1, min(m.n_embd, 64) + 1) if m.n_embd % h == 0]
        raise UserError(f"{where('model.n_embd')}: model.n_embd={m.n_embd} is not divisible by model.n_head={m.n_head}; "
                        f"head counts that divide it: {', '.join(map(str, divisors))}")
    if not 0.0 <= m.dropout < 1.0:
        raise UserError(f"{where('model.dropout')}: key 'model.dropout' must be in [0, 1), got {m.dropout}")
    if t.lr <= 0 or t.min_lr < 0 or t.min_lr > t.lr:
        raise UserError(f"{where('train.min_lr')}: need 0 <= train.min_lr <= train.lr and train.lr > 0, "
                        f"got lr={t.lr}, min_lr={t.min_lr}")
    if t.checkpoint_interval < 0 or t.keep_checkpoints < 1 or t.max_skips < 0:
        raise UserError(f"{where('train')}: train.checkpoint_interval and train.max_skips must be >= 0 and "
                        "train.keep_checkpoints >= 1")
    if t.loss_kernel == "fused" and t.dtype == "float16":
        # the fused loss forms the logits' gradient before GradScaler's scale; 1/N underflows fp16
        raise UserError(f"{where('train.loss_kernel')}: train.loss_kernel=fused does not combine with "
                        "train.dtype=float16; use train.dtype=bfloat16 or float32, or train.loss_kernel=torch")
    if t.warmup_iters < 0 or t.weight_decay < 0 or t.grad_clip < 0:
        raise UserError(f"{where('train')}: train.warmup_iters, train.weight_decay and train.grad_clip must be >= 0")
    if d.eval_tokens <= m.block_size:
        raise UserError(f"{where('data.eval_tokens')}: data.eval_tokens={d.eval_tokens} must exceed "
                        f"model.block_size={m.block_size} (one validation window needs block_size + 1 tokens)")


# --------------------------------------------------------------------------- batch split


@dataclass(frozen=True)
class BatchPlan:
    world_size: int
    per_rank: int  # sequences per rank per optimizer step
    micro_batch: int  # sequences per forward on one rank
    accum_steps: int


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def plan_batch(train: TrainConfig, world_size: int, micro_batch: int | None = None) -> BatchPlan:
    """Split the global batch over ranks and micro-steps, or say which values would work.

    `micro_batch` is the value chosen for `auto` (see train.engine.auto_micro_batch);
    an explicit recipe value wins and must divide the per-rank batch.
    """
    b = train.batch_size
    if b % world_size:
        ranks = [w for w in _divisors(b) if w <= 64]
        near = sorted({(b // world_size) * world_size, (b // world_size + 1) * world_size} - {0})
        raise UserError(f"train.batch_size={b} cannot be split over {world_size} ranks: use a rank count "
                        f"that divides it ({', '.join(map(str, ranks))}) or a batch size divisible by "
                        f"{world_size} (e.g. {' or '.join(map(str, near))})")
    per_rank = b // world_size
    mb = train.micro_batch if train.micro_batch != AUTO else (micro_batch or per_rank)
    if per_rank % mb:
        raise UserError(f"train.micro_batch={mb} does not divide the per-rank batch {per_rank} "
                        f"(train.batch_size={b} over {world_size} rank(s)); values that do: "
                        f"{', '.join(map(str, _divisors(per_rank)))} or auto")
    return BatchPlan(world_size=world_size, per_rank=per_rank, micro_batch=mb, accum_steps=per_rank // mb)
