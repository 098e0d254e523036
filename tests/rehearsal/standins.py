"""Local stand-ins with the shape of everything `profiles/paper.yaml` reads from the hub.

The rehearsal runs the paper profile offline with only hub ids, paths and sizes
swapped (tests/rehearsal/override.yaml). What it swaps them for is written here, in
seconds, from configs and seeded pseudo-text:

- models of the real classes, tiny: Gemma-3-27B-it is a multimodal
  `Gemma3ForConditionalGeneration` (text decoder + SigLIP vision tower, chat
  template, end-of-turn as a second EOS), XLM-R base an `XLMRobertaForMaskedLM`,
  mmBERT a `ModernBertForMaskedLM` (both load as their base encoder class); the
  paper's released XL-LoRA adapters are LoRAs on the Gemma stand-in;
- dataset folders with the real repos' configs, splits, columns and file layout,
  loadable with `datasets.load_dataset(<folder>, <config>, split=...)` exactly as
  the pipeline loads the hub ids;
- the hub datasets of the profile's MTEB tasks, at `<root>/mteb/<repo>`: mteb's own
  task classes load `mteb/<repo>` by id, and `datasets` resolves an id to a local
  folder of that name first, so the real tasks (types, subsets, loaders, scores)
  run on local data with nothing patched.

Where each fact comes from, and which ones could not be checked, is said at each
table below. Text is pseudo-text: an English-like sentence per row index, and for
every other language the same sentence letter-substituted into that language's
script, so "translations" align row by row and each language has its real script
(the filters check scripts).

    python -m tests.rehearsal.standins <project root>     # writes standins/ and mteb/
"""

from __future__ import annotations

import random
import string
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml

OVERRIDE = Path(__file__).with_name("override.yaml")
STANDINS = "standins"  # below the project root; override.yaml names paths inside it

PAPER_LANGUAGES = ("afr", "hau", "hin", "ind", "kor", "mar", "tel")
ENGLISH = "eng"

# --------------------------------------------------------------------------- pseudo-text

# A few letters of each script the stand-ins write (ISO 15924 keys, as mteb's tags).
ALPHABETS = {
    "Latn": string.ascii_lowercase,
    "Deva": "कखगचजटडतदनपबमयरलवशसह",
    "Hang": "가나다라마바사아자차카타파하고노도로모보",
    "Telu": "కగచజటడతదనపబమయరలవసహళ",
    "Arab": "ابتثجحخدذرزسشصضطعغفقكلمنهوي",
    "Cyrl": "абвгдежзиклмнопрстуфхцчш",
    "Grek": "αβγδεζηθικλμνξοπρστυφχψω",
    "Thai": "กขคงจฉชซดตถทนบปผพฟมยรลวสหอ",
    "Hani": "人大中国的一是不了在有我他这为之来以个们到说",
    "Ethi": "ሀለሐመሠረሰሸቀበተቸነኘአከኸወዘየደጀገጠ",
    "Guru": "ਕਖਗਘਚਛਜਝਟਠਡਢਣਤਥਦਧਨਪਫਬਭਮਯ",
}
# mteb tags Korean Kore (Hangul + Han) in some tasks, Chinese Hans
SCRIPT_ALIASES = {"Kore": "Hang", "Hans": "Hani", "Hant": "Hani"}
FULL_STOPS = {"Deva": "।", "Hani": "。", "Ethi": "።", "Guru": "।"}

# scripts of the languages the stand-ins hold (ISO 639-3 or ISO 639-1, as each repo names them)
SCRIPTS = {
    "afr": "Latn", "hau": "Latn", "ind": "Latn", "eng": "Latn", "hin": "Deva", "mar": "Deva",
    "kor": "Hang", "tel": "Telu", "amh": "Ethi", "arb": "Arab", "arq": "Arab", "ary": "Arab",
    "esp": "Latn", "kin": "Latn", "pan": "Guru", "spa": "Latn",
    "ar": "Arab", "bg": "Cyrl", "de": "Latn", "el": "Grek", "en": "Latn", "es": "Latn",
    "fr": "Latn", "hi": "Deva", "ru": "Cyrl", "sw": "Latn", "th": "Thai", "tr": "Latn",
    "ur": "Arab", "vi": "Latn", "zh": "Hani",
}


def script_of(language: str) -> str:
    """The script of a language code, or of an mteb tag ("hin-Deva")."""
    if "-" in language:
        script = language.split("-")[1]
        return SCRIPT_ALIASES.get(script, script if script in ALPHABETS else "Latn")
    return SCRIPTS.get(language, "Latn")


def english(index: int, salt: str = "") -> str:
    """A seeded English-like sentence: the same (index, salt) always gives the same text."""
    rng = random.Random(f"{salt}:{index}")
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 7)))
             for _ in range(rng.randint(5, 11))]
    return " ".join(words).capitalize() + "."


def translate(text: str, language: str) -> str:
    """`text` letter-substituted into `language`'s script (English is left as it is).

    Each language gets its own substitution, so Latin-script languages differ too.
    """
    if language in (ENGLISH, "en"):
        return text
    script = script_of(language)
    letters = ALPHABETS[script]
    shift = sum(map(ord, language)) % len(letters)
    table = {c: letters[(i + shift) % len(letters)] for i, c in enumerate(string.ascii_lowercase)}
    body = "".join(table.get(c, c) for c in text.lower().rstrip("."))
    return body + FULL_STOPS.get(script, ".")


def sentence(language: str, index: int, salt: str = "") -> str:
    return translate(english(index, salt), language)


# --------------------------------------------------------------------------- tokenizers


def _vocabulary(specials: Iterable[str]) -> dict[str, int]:
    """Specials first, then one token per character the stand-in text can hold."""
    chars = [*string.printable[:95], "\n", *FULL_STOPS.values(), *"".join(ALPHABETS.values())]
    return {tok: i for i, tok in enumerate(dict.fromkeys([*specials, *chars]))}


def char_tokenizer(specials: dict[str, str], template: tuple[str, str], extra=(), **kwargs):
    """A character-level fast tokenizer; `template` (single, pair) adds the model's specials.

    Any character outside the vocabulary (real UDHR text in other scripts) is <unk>,
    as a real subword tokenizer would split it into known pieces.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = _vocabulary([*specials.values(), *extra])
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    used = {t for part in template for t in part.split() if t in vocab}
    tok.post_processor = processors.TemplateProcessing(
        single=template[0], pair=template[1], special_tokens=[(t, vocab[t]) for t in sorted(used)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials,
                                   additional_special_tokens=list(extra), **kwargs)


# --------------------------------------------------------------------------- models

# Gemma-3-27B-it (config.json of the checkpoint, as its public copies give it):
# Gemma3ForConditionalGeneration, text 62 layers x 5376, head_dim 128, 32 heads / 16 KV,
# sliding window 1024, vocab 262,208; SigLIP vision tower 27 x 1152, 896 px in 14 px
# patches; 256 tokens per image; eos [1 <eos>, 106 <end_of_turn>]. The tokenizer holds
# <pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4, the turn and image tokens, and adds
# <bos>. The stand-in keeps the classes, the special tokens and the EOS pair. Not
# checked: the real generation_config (believed: do_sample, top_k 64, top_p 0.95).
GEMMA_SPECIALS = {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>",
                  "unk_token": "<unk>", "mask_token": "<mask>"}
GEMMA_TURN_AND_IMAGE = ("<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                        "<end_of_image>", "<image_soft_token>")
# Gemma's chat format: <bos>, then each turn as <start_of_turn>{user|model}\n...<end_of_turn>\n,
# a system message folded into the first user turn; the generation prompt opens a model turn.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] ~ '\n\n' if messages[0]['role'] == 'system' else '' %}"
    "{% for m in messages if m['role'] != 'system' %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ (system if loop.first else '') ~ m['content'] | trim }}"
    "<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def gemma3_it(path: Path, seed: int = 0) -> Path:
    """A tiny multimodal Gemma-3 instruct checkpoint: tokenizer, chat template, config, weights.

    Every linear layer is at least 64 wide: bitsandbytes' CPU 4-bit kernel packs weights
    in blocks of 64 inputs and fails on narrower layers (a real model never has them).
    """
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        GenerationConfig,
        SiglipVisionConfig,
    )

    tokenizer = char_tokenizer(GEMMA_SPECIALS, ("<bos> $A", "<bos> $A $B"),
                               extra=GEMMA_TURN_AND_IMAGE, chat_template=GEMMA_CHAT_TEMPLATE,
                               padding_side="left")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in GEMMA_TURN_AND_IMAGE}
    eos = [tokenizer.eos_token_id, ids["<end_of_turn>"]]
    special_ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id}
    config = Gemma3Config(
        text_config=Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
            query_pre_attn_scalar=32, max_position_embeddings=2048, sliding_window=64,
            eos_token_id=tokenizer.eos_token_id, **special_ids,
        ),
        vision_config=SiglipVisionConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
            image_size=28, patch_size=14, vision_use_head=False,
        ),
        mm_tokens_per_image=4,  # (28 / 14)^2 patches, pooled 1:1
        boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], eos_token_id=eos, **special_ids,
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(do_sample=True, top_k=64, top_p=0.95,
                                               eos_token_id=eos, **special_ids)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


XLMR_SPECIALS = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>",
                 "unk_token": "<unk>", "cls_token": "<s>", "sep_token": "</s>",
                 "mask_token": "<mask>"}
ENCODER_POSITIONS = 130  # XLM-R: two more positions than tokens (514 for 512)


def xlm_roberta_base(path: Path, seed: int = 0) -> Path:
    """A tiny XLM-R (FacebookAI/xlm-roberta-base: XLMRobertaForMaskedLM, 12 x 768, 514
    positions, type vocab 1, <s> 0 <pad> 1 </s> 2 <unk> 3; <s> A </s>, pairs <s> A </s></s> B </s>)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    tokenizer = char_tokenizer(XLMR_SPECIALS, ("<s> $A </s>", "<s> $A </s> </s> $B </s>"),
                               model_max_length=ENCODER_POSITIONS - 2)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=ENCODER_POSITIONS, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    XLMRobertaForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# mmBERT (jhu-clsp/mmBERT-base): ModernBertForMaskedLM, 22 layers, global attention every
# third, local window 128, 8192 positions, Gemma-2's 256k vocabulary with <pad> 0, <eos> 1,
# <bos> 2, <unk> 3, <mask> 4 (config of a public copy of the small model; the base
# model's own page could not be read here). Not checked: how its tokenizer frames a
# sentence; the stand-in writes <bos> A <eos>.
MMBERT_SPECIALS = {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>",
                   "unk_token": "<unk>", "mask_token": "<mask>", "cls_token": "<bos>",
                   "sep_token": "<eos>"}


def mmbert_base(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    tokenizer = char_tokenizer(MMBERT_SPECIALS, ("<bos> $A <eos>", "<bos> $A <eos> $B <eos>"),
                               model_max_length=512)
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in MMBERT_SPECIALS.items()}
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=2, global_attn_every_n_layers=3, local_attention=16,
        max_position_embeddings=512, pad_token_id=ids["pad_token"], bos_token_id=ids["bos_token"],
        eos_token_id=ids["eos_token"], cls_token_id=ids["cls_token"],
        sep_token_id=ids["sep_token"],
    )
    torch.manual_seed(seed)
    ModernBertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def released_adapter(base: Path, path: Path, seed: int) -> Path:
    """The paper's released XL-LoRA adapter's shape on the Gemma stand-in (mbasoz/lora-gemma327b-
    xllora-pos / -neg: r 8, alpha 16, dropout 0.05, all linear layers, causal LM, no bias)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                        bias="none", task_type="CAUSAL_LM", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- dataset folders


def _write(rows: list[dict], path: Path, features=None) -> None:
    """Rows to a parquet or CSV file, as the hub repo stores them."""
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_list(rows, features=features)
    if path.suffix == ".csv":
        dataset.to_csv(str(path), index=False)
    else:
        dataset.to_parquet(str(path))


def _card(folder: Path, configs: dict[str, dict[str, str]]) -> None:
    """README.md whose `configs` block maps each config's splits to their files (the hub's layout)."""
    block = [{"config_name": name, "data_files": [{"split": s, "path": p} for s, p in splits.items()]}
             for name, splits in configs.items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("---\n" + yaml.safe_dump({"configs": block}, sort_keys=False)
                                      + "---\nA local stand-in with the real repo's shape.\n")


def simcse_nli(folder: Path, rows: int = 64) -> None:
    """princeton-nlp/datasets-for-simcse: no card, two files at the root; `datasets` reads the
    CSV (sent0 premise, sent1 entailment, hard_neg contradiction; 275k rows) as `train`."""
    _write([{"sent0": english(i, "nli"), "sent1": english(i, "nli+"), "hard_neg": english(i, "nli-")}
            for i in range(rows)], folder / "nli_for_simcse.csv")
    (folder / "wiki1m_for_simcse.txt").write_text(
        "\n".join(english(i, "wiki") for i in range(rows)) + "\n", encoding="utf-8")


def _name(code: str) -> str:
    from bootstrap_embeddings.languages import language_name

    return language_name(code)


# Aya (CohereLabs/aya_dataset card; the organisation was CohereForAI): configs `default`
# (data/train-*, data/test-*: inputs, targets, language, language_code, annotation_type,
# user_id) and `demographics`.
# Which of the paper's languages have rows, and how many, could not be checked.
AYA_LANGUAGES = (*PAPER_LANGUAGES, ENGLISH, "arb", "spa")


def aya_dataset(folder: Path, rows_per_language: int = 30) -> None:
    def rows(split: str, n: int) -> list[dict]:
        return [{"inputs": sentence(code, i, f"aya-{split}-in"),
                 "targets": sentence(code, i, f"aya-{split}-out"),
                 "language": _name(code), "language_code": code,
                 "annotation_type": "original-annotations", "user_id": f"{i:032x}"}
                for code in AYA_LANGUAGES for i in range(n)]

    _write(rows("train", rows_per_language), folder / "data/train-00000-of-00001.parquet")
    _write(rows("test", 3), folder / "data/test-00000-of-00001.parquet")
    _write([{"user_id": f"{i:032x}", "age_range": [20, 29], "gender": "female", "country": "",
             "languages": ["English"], "dialects": []} for i in range(3)],
           folder / "demographics/train-00000-of-00001.parquet")
    _card(folder, {"default": {"train": "data/train-*", "test": "data/test-*"},
                   "demographics": {"train": "demographics/train-*"}})


def aya_collection_language_split(folder: Path, rows: int = 20) -> None:
    """CohereLabs/aya_collection_language_split: a config per language, named by its English
    name in lower case (`hausa`, `marathi`; `<name>/{train,validation,test}-*.parquet`), with
    the Aya collection's columns; the top-up reads `summarization` rows. The column list is
    the collection card's; this repo's own card could not be read here."""
    configs = {}
    for code in (*PAPER_LANGUAGES, ENGLISH):
        name = _name(code).lower().replace(" ", "_")
        for split in ("train", "validation", "test"):
            _write([{"id": i, "inputs": sentence(code, i, f"col-{split}-in"),
                     "targets": sentence(code, i, f"col-{split}-out"), "dataset_name": "stand-in",
                     "sub_dataset_name": "-", "task_type": ("summarization", "translation")[i % 2],
                     "template_id": 1, "language": code, "script": script_of(code), "split": split}
                    for i in range(rows)], folder / f"{name}/{split}-00000-of-00001.parquet")
        configs[name] = {s: f"{name}/{s}-*" for s in ("train", "validation", "test")}
    _card(folder, configs)


XNLI_CONFIGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur",
                "vi", "zh")
XNLI_LABELS = ("entailment", "neutral", "contradiction")


def xnli(folder: Path, premises: dict[str, int] | None = None) -> None:
    """facebook/xnli: a config per language (ISO 639-1) and `all_languages`; train (MNLI,
    machine-translated), validation, test; premise, hypothesis, label (0 entailment,
    1 neutral, 2 contradiction). Every premise comes with one hypothesis per label, and
    row i is the same pair in every language."""
    from datasets import ClassLabel, Features, Translation, TranslationVariableLanguages, Value

    premises = premises or {"train": 12, "validation": 4, "test": 4}
    label = ClassLabel(names=list(XNLI_LABELS))
    flat = Features({"premise": Value("string"), "hypothesis": Value("string"), "label": label})
    nested = Features({"premise": Translation(languages=list(XNLI_CONFIGS)),
                       "hypothesis": TranslationVariableLanguages(languages=list(XNLI_CONFIGS)),
                       "label": label})
    configs = {}
    for split, n in premises.items():
        pairs = [(english(p, f"xnli-{split}"), english(p * 3 + lab, f"xnli-{split}-h"), lab)
                 for p in range(n) for lab in range(3)]
        for lang in XNLI_CONFIGS:
            _write([{"premise": translate(pr, lang), "hypothesis": translate(hy, lang), "label": lab}
                    for pr, hy, lab in pairs], folder / f"{lang}/{split}-00000-of-00001.parquet", flat)
        _write([{"premise": {lang: translate(pr, lang) for lang in XNLI_CONFIGS},
                 "hypothesis": {"language": list(XNLI_CONFIGS),
                                "translation": [translate(hy, lang) for lang in XNLI_CONFIGS]},
                 "label": lab} for pr, hy, lab in pairs],
               folder / f"all_languages/{split}-00000-of-00001.parquet", nested)
    for name in (*XNLI_CONFIGS, "all_languages"):
        configs[name] = {s: f"{name}/{s}-*" for s in premises}
    _card(folder, configs)


# SemRel/SemRel2024 card: 14 configs; dev and test in each, train only for the supervised
# track's languages (the card shows train for amh and esp; the other seven are the
# SemEval-2024 Task 1 Track A list). sentence1, sentence2, label (relatedness 0-1).
SEMREL_CONFIGS = ("afr", "amh", "arb", "arq", "ary", "eng", "esp", "hau", "hin", "ind", "kin",
                  "mar", "pan", "tel")
SEMREL_WITH_TRAIN = ("amh", "arq", "ary", "eng", "esp", "hau", "kin", "mar", "tel")


def semrel2024(folder: Path, rows: int = 16) -> None:
    configs = {}
    for code in SEMREL_CONFIGS:
        splits = ("train", "dev", "test") if code in SEMREL_WITH_TRAIN else ("dev", "test")
        for split in splits:
            _write(_sts_rows(code, rows, f"semrel-{split}", 1.0, "label"),
                   folder / f"{code}/{split}-00000-of-00001.parquet")
        configs[code] = {s: f"{code}/{s}-*" for s in splits}
    _card(folder, configs)


def _sts_rows(language: str, n: int, salt: str, top: float, score: str = "score") -> list[dict]:
    """Pairs whose second sentence shares a growing share of the first's words, scored by it."""
    rows = []
    for i in range(n):
        first = english(i, salt)
        words, other = first.rstrip(".").split(), english(i, salt + "'").rstrip(".").split()
        keep = i % (len(words) + 1)
        second = " ".join(words[:keep] + other[keep:]) + "."
        rows.append({"sentence1": translate(first, language), "sentence2": translate(second, language),
                     score: round(top * keep / len(words), 3)})
    return rows


# the paper's released triplets (mbasoz/xllora-datasets, per the official code's download
# script and README): one CSV per target language at the root, named by its English name;
# sent0 the target-language anchor, sent1 / hard_neg the English positive / hard negative.
def xllora_datasets(folder: Path, rows: int = 16) -> None:
    for code in PAPER_LANGUAGES:
        _write([{"sent0": sentence(code, i, "xllora"), "sent1": english(i, "xllora+"),
                 "hard_neg": english(i, "xllora-")} for i in range(rows)],
               folder / f"xllora-{_name(code).lower()}.csv")


# --------------------------------------------------------------------------- mteb's datasets

PAPER_MTEB_TASKS = ("SemRel24STS", "STS17", "MIRACLRetrievalHardNegatives", "IndicQARetrieval",
                    "BelebeleRetrieval")


def _wanted_subsets(task, languages: set[str]) -> dict[str, list[str]]:
    """The task's subsets whose every language is a paper language or English (what evaluate loads)."""
    return {subset: tags for subset, tags in task.metadata.hf_subsets_to_langscripts.items()
            if all(tag.split("-")[0] in languages for tag in tags)}


def _sts_task(folder: Path, task, subsets: dict[str, list[str]], rows: int) -> None:
    """A config per subset; a task that loads "fast" (STS17) reads one `default` config
    holding every subset's rows, told apart by a `lang` column."""
    top = float(getattr(task, "max_score", 5))
    splits = task.metadata.eval_splits
    tables = {subset: _sts_rows(tags[0], rows, f"{task.metadata.name}-{subset}", top)
              for subset, tags in subsets.items()}
    if getattr(task, "fast_loading", False):
        tables = {"default": [row | {"lang": subset} for subset, table in tables.items()
                              for row in table]}
    for name, table in tables.items():
        for split in splits:
            _write(table, folder / f"{name}/{split}.parquet")
    _card(folder, {name: {s: f"{name}/{s}.parquet" for s in splits} for name in tables})


def _retrieval_task(folder: Path, task, subsets: dict[str, list[str]], rows: int) -> None:
    """mteb's retrieval layout: per subset, configs <subset>-corpus / -queries / -qrels."""
    configs = {}
    for subset, tags in subsets.items():
        tag, salt = tags[0], f"{task.metadata.name}-{subset}"
        tables = {
            "corpus": [{"id": f"d{i}", "title": "", "text": sentence(tag, i, salt) + " "
                        + sentence(tag, i, salt + "'")} for i in range(rows)],
            "queries": [{"id": f"q{i}", "text": sentence(tag, i, salt)} for i in range(rows)],
            "qrels": [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(rows)],
        }
        for kind, table in tables.items():
            for split in task.metadata.eval_splits:
                _write(table, folder / f"{subset}-{kind}/{split}.parquet")
            configs[f"{subset}-{kind}"] = {s: f"{subset}-{kind}/{s}.parquet"
                                           for s in task.metadata.eval_splits}
    _card(folder, configs)


def _belebele(folder: Path, task, subsets: dict[str, list[str]], rows: int) -> None:
    """mteb/belebele: a config per language_script, a `test` split; passages by `link`,
    questions about them (flores_passage, question, link, and the answer columns)."""
    configs = {}
    for language in sorted({tag.replace("-", "_") for tags in subsets.values() for tag in tags}):
        code = language.replace("_", "-")
        _write([{"link": f"https://example.org/{i // 2}", "question_number": i % 2 + 1,
                 "flores_passage": sentence(code, i // 2, "passage") + " "
                 + sentence(code, i // 2, "passage'"),
                 "question": sentence(code, i, "question"),
                 **{f"mc_answer{k}": sentence(code, i, f"answer{k}") for k in range(1, 5)},
                 "correct_answer_num": "1", "dialect": language, "ds": "2023-05-03"}
                for i in range(rows)], folder / f"data/{language}.parquet")
        configs[language] = {"test": f"data/{language}.parquet"}
    _card(folder, configs)


def mteb_datasets(root: Path, names: Iterable[str] = PAPER_MTEB_TASKS,
                  languages: Iterable[str] = PAPER_LANGUAGES, rows: int = 8) -> list[Path]:
    """The hub datasets of mteb tasks, at root/<their dataset path>, for the given languages."""
    import mteb

    wanted = {*languages, ENGLISH}
    written = []
    for name in names:
        task = mteb.get_task(name)
        folder = root / task.metadata.dataset["path"]
        subsets = _wanted_subsets(task, wanted)
        if name == "BelebeleRetrieval":  # its own loader: a config per language
            _belebele(folder, task, subsets, rows)
        elif task.metadata.type == "STS":
            _sts_task(folder, task, subsets, rows)
        elif task.metadata.type == "Retrieval":
            _retrieval_task(folder, task, subsets, rows)
        else:
            raise ValueError(f"no stand-in for mteb task type {task.metadata.type} ({name})")
        written.append(folder)
    return written


# --------------------------------------------------------------------------- all of it

# hub id -> what writes its stand-in (override.yaml points at STANDINS/<hub id>)
MODELS = {
    "google/gemma-3-27b-it": gemma3_it,
    "FacebookAI/xlm-roberta-base": xlm_roberta_base,
    "jhu-clsp/mmBERT-base": mmbert_base,
}
ADAPTERS = {"mbasoz/lora-gemma327b-xllora-pos": 1, "mbasoz/lora-gemma327b-xllora-neg": 2}
DATASETS = {
    "princeton-nlp/datasets-for-simcse": simcse_nli,
    "CohereLabs/aya_dataset": aya_dataset,
    "CohereLabs/aya_collection_language_split": aya_collection_language_split,
    "facebook/xnli": xnli,
    "SemRel/SemRel2024": semrel2024,
    "mbasoz/xllora-datasets": xllora_datasets,
}


def standin_path(root: Path, hub_id: str) -> Path:
    return Path(root) / STANDINS / hub_id


def write_standins(root: Path) -> Path:
    """Every stand-in under root/standins/<hub id>, and mteb's datasets under root/mteb/."""
    root = Path(root)
    for hub_id, write in {**MODELS, **DATASETS}.items():
        write(standin_path(root, hub_id))
    for hub_id, seed in ADAPTERS.items():
        released_adapter(standin_path(root, "google/gemma-3-27b-it"), standin_path(root, hub_id),
                         seed)
    mteb_datasets(root)
    return root / STANDINS


@cache
def override() -> dict:
    """tests/rehearsal/override.yaml: what the rehearsal changes in profiles/paper.yaml."""
    return yaml.safe_load(OVERRIDE.read_text())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.rehearsal.standins <project root>")
    print(f"stand-ins written under {write_standins(Path(sys.argv[1]))}")
