"""Every method registers itself in `METHODS` when its family module is imported here."""

from peftbench.methods import adapters, bitfit, composed, full, lora, prefix, relora  # noqa: F401 - registration
from peftbench.methods.base import METHODS, Adapted, Capabilities, Method, MethodConfig

__all__ = ["METHODS", "Adapted", "Capabilities", "Method", "MethodConfig"]
