"""The trainer's library: steps, losses, checkpoints, workdir lock, config."""
