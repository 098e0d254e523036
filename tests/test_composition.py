"""LoRA composition: exactness of `exact`, identity of both modes, peft cross-check, bad inputs."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.generator.composition import compose_adapters, compose_language_adapter

LAM = 0.7


def _random_adapter(base, out, seed, r=4, alpha=8.0, targets=("q_proj", "v_proj", "down_proj")):
    """A LoRA with random A and B (no training needed to test arithmetic)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


def _merged_weights(base, adapter=None) -> dict:
    """The base model's linear weights, with `adapter` merged in (W + s B A)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    state = model.state_dict()
    return {k: v.detach().clone() for k, v in state.items() if k.endswith("proj.weight")}


def _weights(path) -> dict:
    from peft.utils import load_peft_weights

    return load_peft_weights(str(path))


@pytest.fixture(scope="module")
def adapters(tiny_generator, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "task": _random_adapter(tiny_generator, root / "task", seed=1),
        "lang": _random_adapter(tiny_generator, root / "lang", seed=2),
        "eng": _random_adapter(tiny_generator, root / "eng", seed=3),
        "rank8": _random_adapter(tiny_generator, root / "rank8", seed=4, r=8, alpha=32.0),
        "other": _random_adapter(tiny_generator, root / "other", seed=5, targets=("q_proj",)),
    }


def test_exact_equals_the_weighted_sum_of_deltas(tiny_generator, adapters, tmp_path):
    import torch

    base = _merged_weights(tiny_generator)

    def delta(name):
        merged = _merged_weights(tiny_generator, adapters[name])
        return {k: merged[k] - base[k] for k in base}

    task, lang, eng = delta("task"), delta("rank8"), delta("eng")
    # different ranks and alphas on purpose: each adapter's alpha/r must be folded in
    sources = [adapters["task"], adapters["rank8"], adapters["eng"]]
    compose_adapters(sources, [1.0, LAM, -LAM], tmp_path / "c", "exact")
    composed = _merged_weights(tiny_generator, tmp_path / "c")
    assert any(lang[k].abs().sum() > 0 for k in base)
    for k in base:
        expected = base[k] + task[k] + LAM * lang[k] - LAM * eng[k]
        torch.testing.assert_close(composed[k], expected, rtol=1e-5, atol=1e-5)


def test_adamergex_adds_A_and_B_tensors_separately(adapters, tmp_path):
    import torch

    compose_language_adapter(
        adapters["task"], adapters["lang"], adapters["eng"], LAM, "adamergex", tmp_path / "c"
    )
    task, lang, eng = (_weights(adapters[name]) for name in ("task", "lang", "eng"))
    composed = _weights(tmp_path / "c")
    assert set(composed) == set(task)
    for k in composed:
        torch.testing.assert_close(composed[k], task[k] + LAM * (lang[k] - eng[k]))


@pytest.mark.parametrize("mode", ["adamergex", "exact"])
def test_one_adapter_with_weight_one_reproduces_it(tiny_generator, adapters, tmp_path, mode):
    import torch

    compose_adapters([adapters["task"]], [1.0], tmp_path / "c", mode)
    original = _merged_weights(tiny_generator, adapters["task"])
    composed = _merged_weights(tiny_generator, tmp_path / "c")
    for k in original:
        torch.testing.assert_close(composed[k], original[k])


def test_exact_matches_peft_cat(tiny_generator, adapters, tmp_path):
    """peft's add_weighted_adapter(combination_type="cat") computes the same tensors."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    names = ["task", "lang", "eng"]
    base = AutoModelForCausalLM.from_pretrained(tiny_generator)
    model = PeftModel.from_pretrained(base, adapters["task"], adapter_name="task")
    for name in names[1:]:
        model.load_adapter(adapters[name], adapter_name=name)
    model.add_weighted_adapter(names, [1.0, LAM, -LAM], "cat", combination_type="cat")
    model.save_pretrained(tmp_path / "peft", selected_adapters=["cat"])
    compose_language_adapter(
        adapters["task"], adapters["lang"], adapters["eng"], LAM, "exact", tmp_path / "ours"
    )
    ours, theirs = _weights(tmp_path / "ours"), _weights(tmp_path / "peft" / "cat")
    assert set(ours) == set(theirs)
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k])


def test_incompatible_adapters_are_user_errors(adapters, tmp_path):
    out = tmp_path / "c"
    with pytest.raises(UserError, match="r=8"):
        compose_adapters([adapters["task"], adapters["rank8"]], [1.0, 1.0], out, "adamergex")
    for mode in ("adamergex", "exact"):
        with pytest.raises(UserError, match="other modules"):
            compose_adapters([adapters["task"], adapters["other"]], [1.0, 1.0], out, mode)
    with pytest.raises(UserError, match="not a PEFT adapter"):
        compose_adapters([tmp_path], [1.0], out, "exact")
    with pytest.raises(UserError, match="composition.mode"):
        compose_adapters([adapters["task"]], [1.0], out, "ties")
    assert not out.exists()


def test_compose_stage_writes_loadable_adapters_and_recipe(
    tiny_generator, adapters, tmp_path, monkeypatch
):
    import json
    import shutil
    import sys

    import yaml
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from conftest import REPO
    from stages import compose

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["languages"] = ["hau"]
    raw["generator"]["composition"] = {"mode": "exact", "lambda": LAM}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    trained = {"task_pos": "task", "task_neg": "task",
               "language_hau": "lang", "language_eng": "eng"}
    for name, source in trained.items():
        shutil.copytree(adapters[source], tmp_path / "models/adapters" / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["compose", "hau"])
    compose.main()

    out = "models/generators/composition/hau"
    recipe = json.loads((tmp_path / out / "recipe.json").read_text())
    assert (recipe["strategy"], recipe["language"], recipe["shots"]) == ("composition", "hau", [])
    assert recipe["mode"] == "exact" and recipe["lambda"] == LAM
    assert recipe["adapters"] == {kind: f"{out}/{kind}" for kind in ("pos", "neg")}
    for path in recipe["adapters"].values():
        base = AutoModelForCausalLM.from_pretrained(tiny_generator)
        PeftModel.from_pretrained(base, tmp_path / path)
