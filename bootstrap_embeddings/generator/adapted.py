"""The generator with one relation's LoRA active at a time, and the dtype it generates in."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator


def generation_dtype(quantization: str) -> str | None:
    """bf16 on a CPU that computes it natively (AVX512-BF16 / AMX), else the loader's default.

    A CPU without native bf16 emulates it (about 100x slower than fp32 on the 2-core
    AVX2 machines this project is developed on), so fp32 is used there. GPUs load in
    bf16 anyway, and quantized models compute in their own compute dtype.
    """
    import torch

    from bootstrap_embeddings.generator.loading import native_bf16

    if quantization != "none" or torch.cuda.is_available():
        return None
    return "bfloat16" if native_bf16() else None


class AdaptedModels:
    """The base model with one relation's adapter active at a time.

    Merged (`merge=True`): the adapter is folded into a fresh copy of the base weights
    (peft `merge_and_unload`), so generation runs at the base model's speed; the copy
    keeps the base pristine for the other adapter (merging in place and unmerging
    would leave rounding error behind). The merge happens in the base's precision
    and the result is then cast to `dtype`, so bf16 weights are rounded once.
    Unmerged: both adapters are loaded into the base once and switched; nothing is
    copied, which is what a quantized or very large model needs.
    """

    def __init__(self, base, adapters: dict[str, str | None], merge: bool, dtype=None):
        self.base, self.adapters, self.merge, self.dtype = base, adapters, merge, dtype
        self._peft = None

    @contextlib.contextmanager
    def active(self, relation: str) -> Iterator[object]:
        from peft import PeftModel

        path = self.adapters.get(relation)
        if path is None:
            if self._peft is None:
                yield self.base
            else:
                with self._peft.disable_adapter():
                    yield self._peft
        elif self.merge:
            model = PeftModel.from_pretrained(copy.deepcopy(self.base), path).merge_and_unload()
            if self.dtype is not None:
                model = model.to(self.dtype)
            model.eval()
            try:
                yield model
            finally:
                del model
        else:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self.base, path, adapter_name=relation)
            elif relation not in self._peft.peft_config:
                self._peft.load_adapter(path, adapter_name=relation)
            self._peft.set_adapter(relation)
            self._peft.eval()
            yield self._peft
