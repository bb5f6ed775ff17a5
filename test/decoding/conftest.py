"""One torch thread for every decoding test: the searches do many small operations, which extra threads on a
shared machine only slow down."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
