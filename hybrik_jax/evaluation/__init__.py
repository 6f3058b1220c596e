"""Metrics, benchmark protocols and the one evaluation loop.

  metrics    joint / vertex errors, Procrustes, PCK / AUC, SumCount sums
  protocols  HybrIK's protocol per dataset: joints, alignment, flip test
  loop       padded batches -> the jitted eval step -> summed metrics (the
             trainer's validation and `evaluate` both run it)
  rootnet    RootNet's published roots, looked up by image file
  benchmark  a model on a benchmark: prepare / run / evaluate
  report     the results dict, its table, its JSON (never over an earlier one)
"""
