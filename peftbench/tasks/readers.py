"""Every data-format reader, registered: look a format up in `FORMATS` from here.

Each reader module registers its formats with `formats.register` when it is imported; this module
imports them all, so `formats` (the interface and the registry) never imports its own readers.
"""

from peftbench.tasks import data_to_text, glue, rotten_tomatoes  # noqa: F401 - registration
from peftbench.tasks.formats import FORMATS, SAMPLES_DIR

__all__ = ["FORMATS", "SAMPLES_DIR"]
