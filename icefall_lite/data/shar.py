"""Training cuts as lhotse Shar shards (local/export_shar.py), read back by train.py --shar-dir
(`LibriSpeechAsrDataModule.shar_train_batches`).

A Shar directory holds, per shard N: cuts.N.jsonl.gz (the cut manifests), features.N.tar (fbank, lilcom) and,
optionally, recording.N.tar (flac). Everything a training batch needs is inside, so nodes need only the directory.

Usage::

    export_shar([Path("data/fbank/librispeech_cuts_train-clean-100.jsonl.gz")], Path("data/shar"), shard_size=1000)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

from lhotse import CutSet, load_manifest_lazy
from lhotse.cut import Cut


def copies_of(cuts: CutSet, copies: int) -> Iterator[Cut]:
    """The cuts `copies` times over; copy k > 0 gets ids suffixed "_copyK" (the data itself is the same)."""
    for copy in range(copies):
        for cut in cuts:
            yield cut if copy == 0 else cut.with_id(f"{cut.id}_copy{copy}")


def export_shar(manifests: Sequence[Path], out_dir: Path, shard_size: int, include_audio: bool = False, copies: int = 1) -> None:
    """Write the cuts of `manifests` (with their features) as Shar shards in `out_dir`."""
    missing = [str(path) for path in manifests if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"cut manifests not found: {', '.join(missing)} (run ./prepare.sh stage 3)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; remove it to export again")
    out_dir.mkdir(parents=True, exist_ok=True)
    cuts = CutSet(cut for path in manifests for cut in copies_of(load_manifest_lazy(path), copies))
    fields = {"features": "lilcom", **({"recording": "flac"} if include_audio else {})}
    logging.info(f"Writing Shar shards of {shard_size} cuts with {sorted(fields)} to {out_dir}")
    shards = cuts.to_shar(out_dir, fields=fields, shard_size=shard_size, verbose=True)
    logging.info(f"Wrote {len(shards['cuts'])} shards")
