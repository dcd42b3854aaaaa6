"""Plug-ins from file to leaderboard; gptablate ls / cp; the built-in ablation recipes."""

import json
import textwrap

import pytest
import torch

from conftest import TINY, run_cli
from gptablate.model.gpt import GPT, GPTConfig, check_arch
from gptablate.recipe import load_recipe

PLUGIN = textwrap.dedent('''
    """A user's own norm, registered from a plug-in file."""
    from dataclasses import dataclass

    import torch
    from gptablate.plugins import Bound, register_norm


    @register_norm("centered_rms")
    class CenteredRMS(torch.nn.Module):
        """RMSNorm of the mean-centred input, with a learned gain (a test plug-in)."""

        @dataclass(frozen=True)
        class Settings:
            eps: float = 1e-6  # added to the mean square
            BOUNDS = {"eps": Bound(above=0)}

        def __init__(self, dim, bias=True, settings=None):
            super().__init__()
            self.eps = (settings or self.Settings()).eps
            self.weight = torch.nn.Parameter(torch.ones(dim))

        def forward(self, x):
            x = x - x.mean(-1, keepdim=True)
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
''')


def test_plugin_from_file_to_leaderboard(prepared_corpus, tmp_path):
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    (tmp_path / "my_norms.py").write_text(PLUGIN)
    (tmp_path / "mine.yaml").write_text("base: tiny\nplugins: [my_norms.py]\narch:\n  norm: centered_rms\n"
                                        "  centered_rms: {eps: 1.0e-5}\n")
    listed = run_cli("ls", "--plugin", str(tmp_path / "my_norms.py"), env=env, check=True).stdout
    assert "centered_rms" in listed and "a test plug-in" in listed
    shown = run_cli("ls", "centered_rms", "--plugin", str(tmp_path / "my_norms.py"), env=env, check=True).stdout
    assert "eps: 1.0e-06  (a number, above 0)\n      added to the mean square" in shown
    refused = run_cli("train", str(tmp_path / "mine.yaml"), "--set", "arch.centered_rms.eps=0", env=env)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: --set: key 'arch.centered_rms.eps' must be above 0, got 0")  # the plug-in's own BOUNDS

    run_cli("train", str(tmp_path / "mine.yaml"), *TINY, "--set", "train.max_iters=6", "--device", "cpu",
            env=env, check=True)
    (run_dir,) = [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert "register_norm(\"centered_rms\")" in next(iter(ckpt["plugins"].values()))
    assert ckpt["recipe"]["arch"]["centered_rms"] == {"eps": 1e-5}

    # the checkpoint carries the code: evaluation works after the file is gone
    (tmp_path / "my_norms.py").unlink()
    out = json.loads(run_cli("eval", str(run_dir), "--tasks", "val", "--device", "cpu", "--format", "json", env=env,
                             check=True).stdout)
    assert abs(out[0]["value"] - ckpt["val_loss"]) < 1e-5
    board = json.loads(run_cli("compare", "--format", "json", env=env, check=True).stdout)
    assert board[0]["arm"].startswith("mine[")


def test_ls_shows_a_variant_and_a_recipe_whole(tmp_path):
    """`ls NAME`: an arch name's rule and each setting with its default, what it takes and its comment in the source;
    a recipe resolved through its bases; hyper is both."""
    import yaml

    from gptablate.model.registry import all_settings
    from gptablate_cli.recipes import SHARED_DOCS, _comments

    shown = run_cli("ls", "hyper", check=True).stdout
    variant, _, recipe = shown.partition("# recipe hyper (")
    assert variant.startswith("arch.residual: hyper  (--set arch.residual=hyper)\n\n  Hyper-Connections (Zhu")
    assert "  n: 4  (an integer, at least 1)\n      streams (the paper's expansion rate)\n" in variant
    assert "  stream_dtype: float32  ('float32' or 'bfloat16')\n      The dtype the streams" in variant
    assert "  lr_mult: 1.0  (a number, at least 0)\n      the variant's own scalars" in variant
    resolved = yaml.safe_load(recipe.split("\n", 1)[1])
    assert resolved["arch"]["residual"] == "hyper" and resolved["model"]["n_layer"] == 12
    assert resolved["arch"]["hyper"]["n"] == 4 and resolved["train"]["max_iters"] == 5000  # from gpt2_124m, its base

    mixln = run_cli("ls", "mixln", check=True).stdout
    assert "  alpha: 0.25  (a number, at least 0 and at most 1)\n      the share of layers that are Post-LN" in mixln
    assert run_cli("ls", "pre", check=True).stdout.rstrip().endswith("no settings")
    assert "arch.value_residual: true or false, default false" in run_cli("ls", "value_residual", check=True).stdout
    assert any(line.startswith("  arch.qk_norm  ") and line.endswith("(modded-nanogpt)")
               for line in run_cli("ls", check=True).stdout.splitlines())
    (tmp_path / "r.yaml").write_text("base: tiny\narch: {norm: rmsnorm}\n")
    mine = run_cli("ls", str(tmp_path / "r.yaml"), check=True).stdout
    assert mine.startswith(f"# recipe {tmp_path / 'r.yaml'}, resolved") and "norm: rmsnorm" in mine
    # every built-in setting says what it is
    undocumented = [f"{name}.{field}" for name, cls in all_settings().items() for field in cls.__dataclass_fields__
                    if not (_comments(cls).get(field) or SHARED_DOCS.get(field))]
    assert undocumented == []
    for name, hint in (("hyperr", "did you mean 'hyper'? "), ("zzz", "")):
        refused = run_cli("ls", name)
        assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
            f"error: ls {name!r}: no recipe, arch name or flag of that name; {hint}`gptablate ls` lists them"]


def test_code_runs_only_from_named_plugins(tmp_path):
    (tmp_path / "r.yaml").write_text("base: tiny\narch:\n  norm: centered_rms_not_loaded\n")
    p = run_cli("train", str(tmp_path / "r.yaml"))
    assert p.returncode == 2 and "unknown arch.norm 'centered_rms_not_loaded'" in p.stderr
    (tmp_path / "bad.yaml").write_text("base: tiny\nplugins: [missing.py]\n")
    p = run_cli("train", str(tmp_path / "bad.yaml"))
    assert p.returncode == 2 and "plug-in 'missing.py' is not a Python file" in p.stderr
    (tmp_path / "tag.yaml").write_text("base: tiny\nrun: {name: !!python/object/apply:os.system ['echo pwned']}\n")
    p = run_cli("train", str(tmp_path / "tag.yaml"))
    assert p.returncode == 2 and "malformed YAML" in p.stderr and "pwned" not in p.stdout


def test_cp_copies_a_builtin_recipe_that_still_resolves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli("cp", "hyper", "my_hyper.yaml", check=True)
    assert load_recipe(tmp_path / "my_hyper.yaml").arch.residual == "hyper"
    p = run_cli("cp", "hyper", "my_hyper.yaml")
    assert p.returncode == 2 and "exists" in p.stderr


STUDY_ARMS = {"rmsnorm": ("rmsnorm", "pre", "vanilla"), "rmsnorm_parallel": ("rmsnorm", "parallel", "vanilla"),
              "rmsnorm_sandwich": ("rmsnorm", "sandwich", "vanilla"), "post_ln": ("layernorm", "post", "vanilla"),
              "x0": ("layernorm", "pre", "x0"), "learned_scaling": ("layernorm", "pre", "learned_scaling"),
              "prores": ("layernorm", "pre", "prores"), "block_attnres": ("layernorm", "pre", "attnres"),
              "hyper": ("layernorm", "pre", "hyper"), "mhc": ("layernorm", "pre", "mhc"),
              "dyt": ("dyt", "pre", "vanilla")}


@pytest.mark.parametrize("arm", sorted(STUDY_ARMS))
def test_study_arms_change_one_thing_from_the_baseline(arm):
    base = load_recipe("gpt2_124m")
    for name in (arm, f"tiny_{arm}"):
        r = load_recipe(name)
        check_arch(r)
        assert (r.arch.norm, r.arch.block, r.arch.residual) == STUDY_ARMS[arm]
    r = load_recipe(arm)
    assert (r.model, r.train, r.data) == (base.model, base.train, base.data)  # same budget
    tiny = load_recipe(f"tiny_{arm}")
    assert (tiny.model, tiny.train) == (load_recipe("tiny").model, load_recipe("tiny").train)
    with torch.device("meta"):
        GPT(GPTConfig.from_recipe(r))  # the full-size arm builds
