"""Reaching the Hugging Face hub, or failing fast and clearly when it cannot be reached.

Without a network, `from_pretrained` and `load_dataset` retry for a long time (up to minutes)
before they give up. Every hub load in peftbench goes through here instead, so an offline user
gets the offline options within seconds and a cached copy is still used:

- `offline_requested`: the user's offline switches (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``,
  ``TRANSFORMERS_OFFLINE``), read at each call (the libraries read them once, at import).
- `hub_reachable`: one TCP connect to the hub's endpoint (3 s timeout; behind a proxy we cannot
  tell, so yes). The answer is cached for the process; ``hub_reachable.cache_clear()`` resets it.
- `offline_reason`: why only the cache may be used (one of the two above), or None.
- `cache_only`: a context manager that switches `datasets` and `huggingface_hub` to offline
  (cache-only) mode for one call, so a missing copy fails at once instead of retrying.
- `network_errors`: the exception types a failed download raises.
- `load_from_hub`: models and tokenizers, from the cache first, else downloaded if the hub answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlparse

from peftbench.errors import OfflineError, one_line

T = TypeVar("T")

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
"""Environment variables any of which, set to 1/true/yes/on, means: do not touch the network."""

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def offline_requested() -> bool:
    """Whether the user switched offline mode on (``HF_HUB_OFFLINE=1`` ...), read now, not at import."""
    return any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in OFFLINE_VARIABLES)


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the hub's endpoint; behind a proxy we cannot tell, so assume yes.

    Cached for the process (``hub_reachable.cache_clear()`` forgets the answer). It does not look
    at the offline switches: see `offline_requested` and `offline_reason`.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    try:
        from huggingface_hub import constants

        endpoint = urlparse(constants.ENDPOINT)
    except ImportError:
        endpoint = urlparse("https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def offline_reason() -> str | None:
    """Why a hub load must stay in the local cache, or None when the hub may be used."""
    if offline_requested():
        return f"offline mode is set ({' / '.join(OFFLINE_VARIABLES)})"
    if not hub_reachable():
        return "the Hugging Face hub is not reachable"
    return None


@contextlib.contextmanager
def cache_only(enabled: bool = True) -> Iterator[None]:
    """Switch `datasets` and `huggingface_hub` to offline mode (cache only) for one call.

    The libraries read ``HF_HUB_OFFLINE`` once, at import, so setting the variable later changes
    nothing; this sets their module-level switches instead and restores them afterwards.
    Does nothing when ``enabled`` is false.
    """
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    try:
        import datasets.config as datasets_config
    except ImportError:
        datasets_config = None
    saved = (constants.HF_HUB_OFFLINE, datasets_config.HF_HUB_OFFLINE if datasets_config else None)
    constants.HF_HUB_OFFLINE = True
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved[0]
        if datasets_config is not None:
            datasets_config.HF_HUB_OFFLINE = saved[1]


def network_errors() -> tuple[type[BaseException], ...]:
    """What a failed download raises: OSError covers ConnectionError, the hub's HTTP and cache misses."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    with contextlib.suppress(ImportError):
        import httpx2  # the hub client's transport in huggingface_hub 2

        errors.append(httpx2.TransportError)
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.TransportError)
    return tuple(errors)


def load_from_hub(load: Callable[..., T], what: str, offline_options: str, **kwargs: object) -> T:
    """`load(**kwargs, local_files_only=True)` from the cache, else a real download if the hub answers.

    Raises `OfflineError` naming ``offline_options`` when neither works.
    """
    try:
        return load(**kwargs, local_files_only=True)
    except Exception:
        pass
    reason = offline_reason()
    if reason is not None:
        raise OfflineError(f"cannot download {what}: {reason}; offline options: {offline_options}")
    try:
        return load(**kwargs)
    except network_errors() as exc:
        raise OfflineError(f"cannot download {what}: {one_line(exc)}; offline options: {offline_options}") from None
