"""Grids of runs: sweeps (local, worker processes, Ray) and tuning studies (Optuna)."""
