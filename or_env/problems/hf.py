"""Reading records from a Hugging Face dataset (hub id, local dataset folder, or saved dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from or_env.problems.readers import MissingDependencyError, RawRecord
from or_env.problems.report import DatasetError

HF_EXTRA_HINT = "pip install 'or-env[hf]'"


def read_hf_records(dataset: str, *, split: str | None) -> tuple[list[RawRecord], str]:
    """Load `dataset` with the `datasets` library and return its records and a source label.

    `dataset` is a hub id ("Org/Name"), a local folder of data files, or a folder written by
    `Dataset.save_to_disk` / `DatasetDict.save_to_disk`. `split` picks the split; it may be left
    out when there is only one.
    """
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError(
            f"loading Hugging Face datasets needs the 'datasets' package: {HF_EXTRA_HINT}"
        ) from exc
    label = f"hf:{dataset}" + (f"[{split}]" if split else "")
    try:
        loaded: Any
        local = Path(dataset)
        if local.is_dir() and any(
            (local / n).exists() for n in ("dataset_dict.json", "state.json")
        ):
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(dataset, split=split)
    except Exception as exc:  # network, missing dataset, bad files: all mean "cannot load it"
        raise DatasetError(f"cannot load Hugging Face dataset {dataset!r}: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None and len(splits) == 1:
            split = splits[0]
            label = f"hf:{dataset}[{split}]"
        if split not in loaded:
            raise DatasetError(
                f"Hugging Face dataset {dataset!r} has splits {splits}; pass split= one of them"
            )
        loaded = loaded[split]
    records = [RawRecord(i, None, dict(row)) for i, row in enumerate(loaded, start=1)]
    return records, label
