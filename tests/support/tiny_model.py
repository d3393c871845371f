"""Build a tiny, randomly initialised Qwen2 model and its tokenizer, without any hub access.

Run as a script by an interpreter that has torch, transformers and tokenizers (the tests
use the vLLM venv's): `python tiny_model.py CORPUS_FILE OUT_DIR`. It needs only the
standard library besides those, so it runs outside this project's environment.

- Tokenizer: a byte-level BPE trained with `tokenizers` on the corpus (the tests pass the
  bundled sample problems, their reference programs and the env's prompts), with ChatML
  special tokens and a Qwen-style chat template (`CHAT_TEMPLATE`: system/user/assistant
  turns between <|im_start|> and <|im_end|>; the final assistant message can be continued,
  which transformers and vLLM do by cutting the rendering after that message).
- Model: `Qwen2ForCausalLM` with 2 layers, hidden size 64 and one attention head of size 64
  (vLLM's CPU attention kernels reject smaller heads), tied embeddings, float32. The weights
  are drawn from a local `torch.Generator`, so the same corpus gives the same model and the
  global random state is never touched.

The output is written to a sibling temporary directory and renamed into place, so a
reader never sees a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
VOCAB_SIZE = 2048
WEIGHT_SEED = 20251
WEIGHT_STD = 0.5

# String literals carry the newlines: `{%- ... %}` whitespace control would eat them.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


def train_tokenizer(corpus: list[str]):
    """A byte-level BPE fitted to the corpus, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )


def random_model(vocab_size: int, eos_id: int, pad_id: int):
    """A Qwen2 causal LM with weights drawn from a seeded local generator."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(config).to(torch.float32)
    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            # Matrices get fresh random values; norms keep their ones and biases their zeros.
            if parameter.dim() >= 2:
                values = torch.randn(parameter.shape, generator=generator) * WEIGHT_STD
                parameter.copy_(values)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False
    )
    return model.eval()


def build(corpus_file: Path, out_dir: Path) -> None:
    """Train the tokenizer, make the model and save both to `out_dir` (atomically)."""
    corpus = [chunk for chunk in corpus_file.read_text().split("\n\n") if chunk.strip()]
    tokenizer = train_tokenizer(corpus)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = random_model(len(tokenizer), eos_id, pad_id)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        summary = {
            "vocab_size": len(tokenizer),
            "parameters": sum(p.numel() for p in model.parameters()),
            "corpus_chunks": len(corpus),
        }
        (staging / "tiny_model.json").write_text(json.dumps(summary, indent=2) + "\n")
        try:
            staging.rename(out_dir)
        except OSError:
            if not (out_dir / "tiny_model.json").exists():  # not a concurrent build's result
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: tiny_model.py CORPUS_FILE OUT_DIR\n")
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    build(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
