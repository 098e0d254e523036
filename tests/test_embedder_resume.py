"""Embedder training resumes from the trainer's checkpoint: the same weights as an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from bootstrap_embeddings import embedder
from test_embedder import _train_cfg, base_dir, toy_triplets  # noqa: F401 - base_dir: a fixture


class Killed(Exception):
    pass


def _stop_at(step: int):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Killed

    return Stop()


def _cfg(params):
    cfg = _train_cfg(params, epochs=3)  # 16 triplets, batch 8: 6 steps, over 3 epochs
    return cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"checkpoint_every": 2, "warmup_ratio": 0.3})})


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resumed_training_gives_the_uninterrupted_weights(base_dir, params, tmp_path,  # noqa: F811
                                                          monkeypatch):
    from sentence_transformers import SentenceTransformerTrainer

    cfg = _cfg(params)
    ref_model = embedder.build_model(base_dir, "mean")
    reference = embedder.train_embedder(ref_model, toy_triplets(), cfg, 3, tmp_path / "ref",
                                        checkpoints=True)
    out = tmp_path / "out"
    real_init = SentenceTransformerTrainer.__init__
    for stop in (3, 5):  # after the checkpoint of step 2, then of step 4 (a resume resumed)
        def init(self, *args, stop=stop, **kwargs):
            real_init(self, *args, **kwargs)
            self.add_callback(_stop_at(stop))
        monkeypatch.setattr(SentenceTransformerTrainer, "__init__", init)
        with pytest.raises(Killed):
            embedder.train_embedder(embedder.build_model(base_dir, "mean"), toy_triplets(), cfg,
                                    3, out, checkpoints=True)
        assert embedder.last_valid_checkpoint(out).endswith(f"checkpoint-{stop - 1}")
    monkeypatch.setattr(SentenceTransformerTrainer, "__init__", real_init)
    model = embedder.build_model(base_dir, "mean")
    resumed = embedder.train_embedder(model, toy_triplets(), cfg, 3, out, checkpoints=True)
    assert resumed["loss_curve"] == reference["loss_curve"] and resumed["steps"] == 6
    a, b = _weights(ref_model), _weights(model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.max_seq_length == 32


def test_an_incomplete_checkpoint_is_removed(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (tmp_path / "checkpoint-4").mkdir()  # killed before trainer_state.json
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # torn
    assert embedder.last_valid_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_key_changes_with_what_shapes_the_result(base_dir, params):  # noqa: F811
    cfg = _cfg(params)
    key = embedder.resume_key(base_dir, toy_triplets(), cfg, 3)
    other_every = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"checkpoint_every": 7})})
    assert embedder.resume_key(base_dir, toy_triplets(), other_every, 3) == key
    assert embedder.resume_key(base_dir, toy_triplets(), cfg, 4) != key
    assert embedder.resume_key(base_dir, toy_triplets()[1:], cfg, 3) != key
    other_lr = cfg.model_copy(update={"training": cfg.training.model_copy(update={"lr": 1e-4})})
    assert embedder.resume_key(base_dir, toy_triplets(), other_lr, 3) != key
