"""Configuration: the dataclasses and the one --set grammar (schema), and their resolution from specs and presets."""
