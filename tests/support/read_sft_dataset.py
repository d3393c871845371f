"""Read an SFT parquet with verl's own `MultiTurnSFTDataset`, as verl's SFT trainer does.

Runs in the ML venv: `python read_sft_dataset.py PARQUET TOKENIZER_DIR`. Prints one JSON
line: per row, the whole decoded text, the decoded tokens the loss is computed on
(`loss_mask` 1: "trained") and the other tokens ("context").
"""

from __future__ import annotations

import json
import sys


def main(parquet: str, tokenizer_dir: str) -> int:
    from verl.utils import hf_tokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    tokenizer = hf_tokenizer(tokenizer_dir)
    config = {"messages_key": "messages", "max_length": 4096, "truncation": "error"}
    dataset = MultiTurnSFTDataset(parquet, tokenizer, config)
    items = []
    for index in range(len(dataset)):
        item = dataset[index]
        ids = item["input_ids"].tolist()
        loss = item["loss_mask"].tolist()
        attention = item["attention_mask"].tolist()
        trained = [t for t, m in zip(ids, loss, strict=True) if m]
        context = [t for t, m, a in zip(ids, loss, attention, strict=True) if a and not m]
        items.append(
            {
                "text": tokenizer.decode([t for t, a in zip(ids, attention, strict=True) if a]),
                "trained": tokenizer.decode(trained),
                "context": tokenizer.decode(context),
            }
        )
    sys.stdout.write(json.dumps(items) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
