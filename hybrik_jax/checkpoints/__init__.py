"""Checkpoint formats, between models/ and training/; every Orbax call is here.

Modules, one job each:
  model_dir          the exported model (a directory `evaluate` and `demo`
                     read): save_model, load_model, check_variables_match
  train_checkpoints  training checkpoints (Orbax CheckpointManager in
                     WORKDIR/checkpoints): save / restore train state, meta,
                     variables; set_aside, latest_step, wait
  loading            load_for_inference: an exported model or a workdir
  averaging          the mean of the last N epoch checkpoints
  integrity          file manifests (files.json), tree checksums, the
                     CorruptCheckpointError / CheckpointNotFoundError they raise
  config_json        configs to and from JSON
"""
