import re

import pytest
import yaml

from gptablate.errors import UserError
from gptablate.recipe import builtin_recipes, load_recipe, parse_override, plan_batch, recipe_from_dict
from gptablate.train.engine import WHOLE_GRAPH_MAX_PARAMS, ddp_graph_form


def test_builtin_recipes_load_with_the_studies_budget():
    assert {"gpt2_124m", "gpt2_345m", "gpt2_1.5b", "tiny"} <= set(builtin_recipes())
    r = load_recipe("gpt2_124m")
    assert (r.model.n_layer, r.model.n_head, r.model.n_embd, r.model.block_size) == (12, 12, 768, 1024)
    assert (r.train.max_iters, r.train.batch_size, r.train.micro_batch) == (5000, 60, "auto")
    assert (r.train.lr, r.train.min_lr, r.train.betas, r.train.grad_clip) == (6e-4, 6e-5, (0.9, 0.95), 1.0)
    assert (r.data.dataset, r.data.eval_interval) == ("fineweb10B", 500)
    assert load_recipe("gpt2_1.5b").model.n_embd == 1600
    m = load_recipe("gpt2_345m").model
    assert (m.n_layer, m.n_head, m.n_embd) == (24, 16, 1024)


def test_base_inheritance_deep_merges_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "parent.yaml").write_text("base: gpt2_124m\ntrain:\n  lr: 1.0e-3\nmodel:\n  n_layer: 6\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../parent.yaml\ntrain:\n  seed: 7\narch:\n  norm: rmsnorm\n")
    r = load_recipe(tmp_path / "sub" / "child.yaml")
    assert r.name == "child"
    assert (r.train.lr, r.train.seed, r.train.batch_size) == (1e-3, 7, 60)  # merged, not replaced
    assert (r.model.n_layer, r.model.n_embd, r.arch.norm) == (6, 768, "rmsnorm")


def test_overrides_are_yaml_typed_and_label_the_arm():
    r = load_recipe("tiny", ["train.lr=3e-3", "train.betas=[0.9, 0.99]", "model.bias=false", "train.seed=5"])
    assert r.train.lr == 3e-3 and r.train.betas == (0.9, 0.99) and r.model.bias is False
    assert r.arm_label() == "tiny[train.lr=0.003,train.betas=[0.9,0.99],model.bias=false]"
    assert parse_override("train.max_iters=1e3") == ("train.max_iters", 1000.0)
    assert load_recipe("tiny", ["train.max_iters=1e3"]).train.max_iters == 1000
    twice = load_recipe("tiny", ["train.lr=1e-3", "model.bias=false", "train.lr=2e-3"])
    assert twice.train.lr == 2e-3 and twice.arm_label() == "tiny[train.lr=0.002,model.bias=false]"


def test_an_arms_label_names_the_recipe_it_trains(tmp_path, prepared_corpus):
    """'tiny[train.lr=0.001,...]', as compare labels an arm, loads as the recipe with those overrides: the same arm,
    whose --set overrides come after its own; a list value keeps its commas; a bad one names the label."""
    from conftest import run_cli

    plain = load_recipe("tiny", ["train.lr=0.001", "train.betas=[0.9, 0.99]", "arch.norm=rmsnorm"])
    label = plain.arm_label()
    assert label == "tiny[train.lr=0.001,train.betas=[0.9,0.99],arch.norm=rmsnorm]"
    again = load_recipe(label)
    assert again.arm_hash() == plain.arm_hash() and again.arm_label() == label and again.train.betas == (0.9, 0.99)
    later = load_recipe("tiny[train.lr=0.001]", ["train.lr=0.002"])
    assert later.train.lr == 0.002 and later.arm_label() == "tiny[train.lr=0.002]"
    with pytest.raises(UserError, match=re.escape("recipe 'tiny[train.lr]': 'train.lr' is not KEY=VALUE")):
        load_recipe("tiny[train.lr]")
    with pytest.raises(UserError, match=re.escape("tiny[train.lrr=1]: unknown key 'train.lrr' (did you mean "
                                                  "'train.lr'?)")):
        load_recipe("tiny[train.lrr=1]")
    odd = tmp_path / "odd[1].yaml"  # a file whose name has brackets is that file
    odd.write_text("base: tiny\n")
    assert load_recipe(str(odd)).arm_label() == "odd[1]"

    env = {"GPTABLATE_RUNS": str(tmp_path / "runs"), "GPTABLATE_DATA": str(prepared_corpus)}
    plan = run_cli("sweep", "tiny[arch.norm=rmsnorm]", "tiny", "--seeds", "2", "--set", "data.dataset=corpus",
                   "--dry-run", env=env, check=True).stdout.splitlines()
    assert plan[:2] == [f"train   tiny[arch.norm=rmsnorm,data.dataset=corpus] seed {s}" for s in (1, 2)]
    shown = run_cli("ls", "tiny[arch.norm=rmsnorm]", env=env, check=True).stdout
    assert "what `gptablate train 'tiny[arch.norm=rmsnorm]'` runs" in shown and "norm: rmsnorm" in shown
    from gptablate.model.gpt import GPT, GPTConfig

    n = GPT(GPTConfig.from_recipe(load_recipe("tiny[arch.norm=rmsnorm]"))).num_params()  # built, not on meta
    assert shown.splitlines()[-1].startswith(f"# {n:,} parameters ({n / 1e6:.2f}M, nanoGPT's count), 0.020 GFLOP")
    assert shown.splitlines()[-1].endswith("200 steps x 1,024 tokens = 204,800 tokens, 4.12e+12 FLOP")
    refused = run_cli("ls", "tiny[arch.block=post,arch.residual=hyper]", env=env)  # a model train would refuse
    assert refused.returncode == 2 and "does not combine with arch.block 'post'" in refused.stderr
    (tmp_path / "reads.py").write_text(  # a plug-in whose module reads a value as it is built: not on meta
        "import torch\nfrom gptablate.plugins import register_norm\n\n@register_norm('reads')\n"
        "class Reads(torch.nn.LayerNorm):\n    def __init__(self, dim, bias=True, settings=None):\n"
        "        super().__init__(dim)\n        self.k = float(self.weight.sum())\n")
    (tmp_path / "reads.yaml").write_text("base: tiny\nplugins: [reads.py]\narch: {norm: reads}\n")
    shown = run_cli("ls", str(tmp_path / "reads.yaml"), env=env, check=True).stdout
    assert shown.splitlines()[-1].startswith("# parameters not counted: the model does not build without memory")


def test_seed_and_speed_settings_do_not_change_the_arm():
    base = load_recipe("tiny")
    same = load_recipe("tiny", ["train.seed=9", "train.micro_batch=2", "train.compile=false",
                                "train.log_interval=1", "run.name=x", "data.eval_interval=10",
                                "train.attention=flash", "train.ddp_graph=whole"])
    assert same.arm_hash() == base.arm_hash() and same.arm_label() == "tiny"
    assert same.train.ddp_graph == "whole" and base.train.ddp_graph == "auto"
    with pytest.raises(UserError, match="'auto' or 'flash' or 'cudnn' or 'efficient' or 'math'"):
        load_recipe("tiny", ["train.attention=fast"])
    with pytest.raises(UserError, match="train.ddp_graph.*'auto' or 'split' or 'whole'.*'none'"):
        load_recipe("tiny", ["train.ddp_graph=none"])
    assert load_recipe("tiny", ["train.lr=1e-3"]).arm_hash() != base.arm_hash()
    # a variant's kernel choice is a speed setting too; its other settings are not
    hyper = load_recipe("tiny", ["arch.residual=hyper"])
    torch_path = load_recipe("tiny", ["arch.residual=hyper", "arch.hyper.kernel=torch"])
    assert torch_path.arm_hash() == hyper.arm_hash() and torch_path.arm_label() == "tiny[arch.residual=hyper]"
    assert load_recipe("tiny", ["arch.residual=hyper", "arch.hyper.n=2"]).arm_hash() != hyper.arm_hash()
    # the streams' dtype changes what is computed: an arm of its own; at its default (fp32, all there was before the
    # setting) the arms' hashes are those recorded before it (commit 77146a5), so that older runs stay in their arms
    assert hyper.arm_hash() == "1f593b8518" and load_recipe("hyper").arm_hash() == "e73b4b46ea"
    assert load_recipe("tiny", ["arch.residual=mhc"]).arm_hash() == "c2b028c366"
    assert load_recipe("mhc").arm_hash() == "891eb09ffe"
    for variant in ("hyper", "mhc"):
        fp32 = load_recipe("tiny", [f"arch.residual={variant}"])
        bf16 = load_recipe("tiny", [f"arch.residual={variant}", f"arch.{variant}.stream_dtype=bfloat16"])
        assert bf16.arm_hash() != fp32.arm_hash() and "stream_dtype=bfloat16" in bf16.arm_label()
        with pytest.raises(UserError, match=f"arch.{variant}.stream_dtype.*'float32' or 'bfloat16'.*'fp16'"):
            load_recipe("tiny", [f"arch.residual={variant}", f"arch.{variant}.stream_dtype=fp16"])


def test_ddp_graph_auto_takes_the_whole_graph_for_small_models_on_one_node():
    small, large = 124_000_000, 1_556_000_000
    assert small < WHOLE_GRAPH_MAX_PARAMS < large
    assert ddp_graph_form("auto", small, world_size=4, local_world_size=4) == "whole"
    assert ddp_graph_form("auto", large, world_size=4, local_world_size=4) == "split"
    assert ddp_graph_form("auto", small, world_size=8, local_world_size=4) == "split"  # two nodes
    assert ddp_graph_form("split", small, world_size=4, local_world_size=4) == "split"
    assert ddp_graph_form("whole", large, world_size=8, local_world_size=4) == "whole"


def test_unknown_key_names_file_key_and_closest(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text("base: tiny\ntrain:\n  lrr: 0.1\n")
    with pytest.raises(UserError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and "'train.lrr'" in msg and "did you mean 'train.lr'" in msg
    with pytest.raises(UserError, match=r"--set: unknown key 'model.n_layers' \(did you mean 'model.n_layer'"):
        load_recipe("tiny", ["model.n_layers=3"])


def test_wrong_type_names_key_and_expected_type(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  max_iters: lots\n")
    with pytest.raises(UserError, match=r"bad\.yaml: key 'train.max_iters' must be an integer, got str 'lots'"):
        load_recipe(p)
    with pytest.raises(UserError, match=r"'train.micro_batch' must be an integer or 'auto'"):
        load_recipe("tiny", ["train.micro_batch=big"])
    with pytest.raises(UserError, match=r"'model.bias' must be true or false"):
        load_recipe("tiny", ["model.bias=1"])


@pytest.mark.parametrize("sets, message", [
    (["arch.residual=denseformer", "arch.denseformer.dilation=0"],
     "'arch.denseformer.dilation' must be at least 1, got 0"),
    (["arch.residual=denseformer", "arch.denseformer.period=-1"],
     "'arch.denseformer.period' must be at least 1, got -1"),
    (["arch.residual=laurel", "arch.laurel.mode=lr", "arch.laurel.rank=0"],
     "'arch.laurel.rank' must be at least 1, got 0"),
    (["arch.block=mixln", "arch.mixln.alpha=1.5"], "'arch.mixln.alpha' must be at least 0 and at most 1, got 1.5"),
    (["arch.residual=prores", "arch.prores.T=0"], "'arch.prores.T' must be above 0, got 0"),
    (["arch.residual=gates", "arch.gates.lr_mult=-1"], "'arch.gates.lr_mult' must be at least 0, got -1"),
    (["arch.residual=rezero", "arch.rezero.lr_mult=-0.5"], "'arch.rezero.lr_mult' must be at least 0, got -0.5"),
    (["arch.residual=mhc", "arch.mhc.iters=0"], "'arch.mhc.iters' must be at least 1, got 0"),
    (["arch.residual=mhc", "arch.mhc.n=1"], "'arch.mhc.n' must be at least 2, got 1"),
    (["arch.residual=hyper", "arch.hyper.n=0"], "'arch.hyper.n' must be at least 1, got 0"),
    (["arch.residual=attnres", "arch.attnres.blocks=0"], "'arch.attnres.blocks' must be at least 1, got 0"),
])
def test_variant_settings_outside_their_range_are_refused(tmp_path, sets, message):
    """Each had trained (a zero dilation or period, or a negative rank, crashed with a traceback; the rest trained a
    model that was not the variant: attnres.blocks=0 silently meant the default)."""
    with pytest.raises(UserError, match="^--set: key " + re.escape(message) + "$"):
        load_recipe("tiny", sets)
    assert load_recipe("tiny", sets[:-1]).arch.residual  # the same without the bad value loads
    # the same in a recipe file: the error names the file
    arch: dict = {}
    for item in sets:
        key, value = item.split("=")
        section, *setting = key.split(".")[1:]
        if setting:
            arch.setdefault(section, {})[setting[0]] = yaml.safe_load(value)
        else:
            arch[section] = value
    recipe = tmp_path / "arm.yaml"
    recipe.write_text(yaml.safe_dump({"base": "tiny", "arch": arch}))
    with pytest.raises(UserError, match="^" + re.escape(f"{recipe}: key {message}") + "$"):
        load_recipe(recipe)


def test_a_saved_recipe_from_before_a_range_was_set_still_loads():
    """A checkpoint holds what was trained: runs from before the ranges (mhc.iters 0 trained; attnres.blocks 0 meant
    the default) load to be evaluated or resumed, where a new recipe with the same values is refused."""
    from gptablate.model.gpt import GPT, GPTConfig
    from gptablate.recipe import recipe_from_dict

    for residual, setting in (("mhc", {"iters": 0}), ("attnres", {"blocks": 0})):
        saved = load_recipe("tiny", [f"arch.residual={residual}"]).to_dict()
        saved["arch"][residual].update(setting)
        with pytest.raises(UserError, match="must be at least 1, got 0"):
            load_recipe("tiny", [f"arch.residual={residual}", f"arch.{residual}.{next(iter(setting))}=0"])
        recipe = recipe_from_dict(saved)
        assert recipe.arch.settings[residual] == saved["arch"][residual]
        model = GPT(GPTConfig.from_recipe(recipe))
        if residual == "attnres":  # the default groups, as it trained
            assert model.residual.groups == GPT(GPTConfig.from_recipe(load_recipe(
                "tiny", ["arch.residual=attnres"]))).residual.groups


def test_malformed_yaml_and_bad_shapes(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("train: {lr: [\n")
    with pytest.raises(UserError, match=r"broken\.yaml.*malformed YAML"):
        load_recipe(p)
    with pytest.raises(UserError, match="not divisible by model.n_head=5"):
        load_recipe("tiny", ["model.n_head=5"])
    with pytest.raises(UserError, match="not found"):
        load_recipe("no_such_recipe")


def test_circular_base_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(UserError, match="circular base"):
        load_recipe(tmp_path / "a.yaml")


def test_batch_split_over_ranks_and_micro_steps():
    t = load_recipe("gpt2_124m").train
    assert plan_batch(t, 1, 12).accum_steps == 5  # the original runs: 12 x 5
    p = plan_batch(t, 4, 15)
    assert (p.per_rank, p.micro_batch, p.accum_steps) == (15, 15, 1)
    assert plan_batch(t, 2, None).micro_batch == 30  # auto without a memory probe: the whole rank batch
    with pytest.raises(UserError, match=r"train.batch_size=60 cannot be split over 8 ranks.*1, 2, 3, 4, 5, 6.*56 or 64"):
        plan_batch(t, 8)
    fixed = load_recipe("gpt2_124m", ["train.micro_batch=12"]).train
    with pytest.raises(UserError, match=r"train.micro_batch=12 does not divide the per-rank batch 15.*1, 3, 5, 15"):
        plan_batch(fixed, 4)


def test_saved_recipe_round_trips():
    r = load_recipe("tiny", ["train.lr=2e-3"])
    back = recipe_from_dict(r.to_dict())
    assert back == r and back.arm_label() == r.arm_label() and back.arm_hash() == r.arm_hash()
