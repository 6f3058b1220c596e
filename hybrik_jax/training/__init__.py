"""The trainer's library: `trainer.train_and_evaluate` and its parts.

  trainer          the job, by section (python -m hybrik_jax.train runs it)
  train_lib        schedule, optimizer, TrainState, the jitted train step
  losses           HybrIK's losses
  datasets         open / build / name the missing datasets of a run
  stop_signals     SIGTERM / SIGINT -> save and `Stopped`
  recovery         the newest readable, compatible checkpoint
  initial_weights  config.init: an exported backbone or model
  baselines        the untrained model and the constant (mean pose)
  summary          interval averages, hparams, the final table
  workdir_lock, metric_writer, train_config
"""
