"""Reaching the Hugging Face hub, or failing fast and clearly when it cannot be reached.

Without a network, `from_pretrained` and `load_dataset` retry for minutes before they give up.
Every hub load here first tries the local cache, then checks in a few seconds whether the hub
answers at all, so an offline user gets the offline options at once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlparse

from peftbench.errors import OfflineError

T = TypeVar("T")


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def load_from_hub(load: Callable[..., T], what: str, offline_options: str, **kwargs: object) -> T:
    """`load(**kwargs, local_files_only=True)` from the cache, else a real download if the hub answers."""
    try:
        return load(**kwargs, local_files_only=True)
    except Exception:
        pass
    if not hub_reachable():
        raise OfflineError(f"cannot download {what}: the Hugging Face hub is not reachable\noffline options: {offline_options}")
    try:
        return load(**kwargs)
    except OSError as exc:
        raise OfflineError(f"cannot download {what}: {exc}\noffline options: {offline_options}") from None
