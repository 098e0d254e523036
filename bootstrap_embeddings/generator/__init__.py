"""The generator LLM: loading, LoRA adapters, their composition, prompts and generation."""
