"""generator.xl_lora.released: published XL-LoRA adapters fetched and checked instead of trained."""

from __future__ import annotations

import json

import pytest
from conftest import make_lora

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.generator.released import materialise_adapter

KEY = "generator.xl_lora.released.pos"


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def adapter(tiny_generator, tmp_path_factory):
    """A local PEFT adapter standing in for the hub id mbasoz/lora-gemma327b-xllora-pos."""
    return make_lora(tiny_generator, tmp_path_factory.mktemp("released") / "pos", seed=5)


def test_a_local_adapter_is_written_as_the_trained_ones_are(adapter, tiny_generator, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "models/adapters/xl_lora_pos"
    record = materialise_adapter(str(adapter), out, str(tiny_generator), None, KEY)
    assert json.loads((out / "training.json").read_text()) == record
    assert (record["released"], record["steps"], record["source"]["kind"]) == (str(adapter), 0, "local")
    assert json.loads((out / "adapter_config.json").read_text()) == json.loads(
        (adapter / "adapter_config.json").read_text())
    source, copied = _weights(adapter), _weights(out)
    assert source.keys() == copied.keys()
    assert all(torch.equal(source[k], copied[k]) for k in source)
    # and it loads onto the real base as the generate stage loads an adapter
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_generator), out)
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_an_adapter_for_another_model_is_a_one_line_error(tiny_generator, tmp_path):
    from rehearsal import standins

    gemma = standins.gemma3_it(tmp_path / "gemma")
    other = standins.released_adapter(gemma, tmp_path / "other", seed=1)
    with pytest.raises(UserError, match=rf"^{KEY}: the adapter does not fit the base generator"):
        materialise_adapter(str(other), tmp_path / "out", str(tiny_generator), None, KEY)
    assert not (tmp_path / "out").exists()


def test_what_is_not_an_adapter(tiny_generator, tmp_path):
    with pytest.raises(UserError, match=rf"^{KEY}: \./no/such: no such directory"):
        materialise_adapter("./no/such", tmp_path / "out", str(tiny_generator), None, KEY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no adapter_config\.json; not a PEFT adapter$"):
        materialise_adapter(str(tmp_path / "empty"), tmp_path / "out", str(tiny_generator), None, KEY)


def test_a_hub_id_the_hub_cannot_give_is_a_one_line_error(tiny_generator, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache, offline (conftest)
    with pytest.raises(UserError, match=rf"^{KEY}: 'mbasoz/lora-gemma327b-xllora-pos' is not a "
                                        "local directory, and the hub cannot give it"):
        materialise_adapter("mbasoz/lora-gemma327b-xllora-pos", tmp_path / "out",
                            str(tiny_generator), None, KEY)


def test_the_stage_fetches_instead_of_training(adapter, tiny_generator, params, tmp_path,
                                               monkeypatch):
    from bootstrap_embeddings.base_models import materialize_generator
    from bootstrap_embeddings.config import ReleasedAdapters, XlLoraParams
    from stages import xl_lora_adapter

    materialize_generator(str(tiny_generator), tmp_path / "models/base/generator")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    released = XlLoraParams(released=ReleasedAdapters(pos=str(adapter), neg=str(adapter)))
    params = params.model_copy(update={
        "generator": params.generator.model_copy(update={"xl_lora": released})})
    # no data/xl_lora rows: the training path would stop on them
    xl_lora_adapter.main.__wrapped__(params, "pos")
    out = tmp_path / "models/adapters/xl_lora_pos"
    assert json.loads((out / "training.json").read_text())["released"] == str(adapter)
    assert (out / "adapter_model.safetensors").read_bytes() == (
        adapter / "adapter_model.safetensors").read_bytes()
