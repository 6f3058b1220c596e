"""Training configs: `python -m hybrik_jax.train --config configs/<name>.py`."""
