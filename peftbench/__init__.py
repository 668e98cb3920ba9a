"""peftbench: a comparative benchmark of parameter-efficient fine-tuning methods (after the LoRA paper)."""

__version__ = "0.1.0"
