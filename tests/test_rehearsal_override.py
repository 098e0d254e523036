"""The rehearsal's override changes only hub ids, paths and sizes: what it runs is profiles/paper.yaml."""

from __future__ import annotations

import copy

import yaml

from bootstrap_embeddings.config import parse_params
from conftest import REPO, deep_merge
from rehearsal import standins

PROFILE = REPO / "profiles" / "paper.yaml"

# Every key the override may change, and how. A hub id may only become the local
# stand-in of that same id; a size may only shrink.
HUB_IDS = {"generator.model", "embedder.model", "data.nli.name", "data.anchors.name",
           "data.monolingual.name", "data.monolingual_top_up.name", "data.parallel.name",
           "data.xl_lora_nli.name",
           "data.released_triplets.name", "embedder.dev.sts.name"}
PATHS = {"data.udhr_archive", "data.wordnet_archive"}
SIZES = {"generator.training.max_steps", "generator.training.max_examples",
         "generator.training.batch_size", "generator.training.grad_accum",
         "generator.generation.max_new_tokens", "generator.generation.batch_size", "data.nli.max_rows", "data.anchors.max_rows",
         "data.monolingual.max_rows", "data.parallel.max_rows", "data.anchors_per_language",
         "data.monolingual_per_language", "data.xl_lora_pairs_per_language",
         "embedder.training.max_triplets", "data.xl_lora_nli.rows", "embedder.dev.every"}


def leaves(tree, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf (a list is a leaf: replacing it changes it)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out |= leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def rehearsed() -> dict:
    return deep_merge(copy.deepcopy(profile()), standins.override())


def changed_keys() -> dict[str, tuple[object, object]]:
    before, after = leaves(profile()), leaves(rehearsed())
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
            if before.get(k) != after.get(k)}


def test_override_changes_only_allowed_keys():
    changed = changed_keys()
    assert changed, "the override changes nothing: is it applied?"
    assert set(changed) <= HUB_IDS | PATHS | SIZES, sorted(set(changed) - HUB_IDS - PATHS - SIZES)
    # and it names no key the profile lacks (a misspelt key would add a leaf)
    assert set(leaves(standins.override())) <= set(leaves(profile()))


def test_hub_ids_become_the_stand_in_of_the_same_id():
    written = {*standins.MODELS, *standins.DATASETS}
    for key, (hub_id, local) in changed_keys().items():
        if key in HUB_IDS:
            assert hub_id in written, f"{key}: no stand-in is written for {hub_id}"
            assert local == f"{standins.STANDINS}/{hub_id}", key


def test_sizes_only_shrink():
    for key, (real, small) in changed_keys().items():
        if key in SIZES:
            assert isinstance(small, int) and 0 < small and (real is None or small <= real), key


def test_profile_with_the_override_is_valid_params():
    params = parse_params(rehearsed(), "profiles/paper.yaml + tests/rehearsal/override.yaml")
    assert params.languages == parse_params(profile()).languages  # all seven
