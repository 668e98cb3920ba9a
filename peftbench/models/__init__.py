"""Model sources and building: ArchSpecs, presets, the hub, packaged models, tokenizers."""
