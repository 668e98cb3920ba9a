"""Measurements without training a task (`peftbench latency`, `peftbench profile`) and those every run records.

One responsibility per module:

- `options`: `LatencyOptions` and `ProfileOptions`, what one measurement is asked to do (stdlib only,
  so the CLI can build them without importing torch);
- `common`: the set-up both commands share (the model's shape with random weights, inputs, device,
  dtype, each method's hyperparameters with `--set` routed to it), the paired design (rounds that run
  every variant once in a rotated order, paired per-round ratios, the A/A verdict) and the helpers
  that run one job in a fresh Python process;
- `variants`: what is measured: copies of one base model with each method applied, for inference
  (base, A/A control, methods, merged copies) and for training (the floor, methods with AdamW);
- `latency`, `profile`: the two protocols, their records and their text;
- `measure`: the run-time measurements every run records (peak memory, throughput, phase times,
  checkpoint size) and `summarize`, the statistics of repeated measurements.

Importing this package imports nothing heavy; each module imports what it needs.
"""
