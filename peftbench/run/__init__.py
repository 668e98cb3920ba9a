"""One run: the runner (plan, loop, record keeping, hooks), checkpoints and stopping."""
