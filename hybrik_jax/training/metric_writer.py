"""TensorBoard scalars without TensorFlow.

clu's metric writers import TensorFlow, which training must not need at run
time. This writes the same event files with tensorboard's own
`EventFileWriter` and summary protos (the path torch.utils.tensorboard takes),
plus `hparams.json` beside them. `tensorboard --logdir WORKDIR` reads them.

tensorboard's file layer imports TensorFlow whenever it is installed (6 s of a
trainer's start-up on a 2-core CPU, for nothing); for a local logdir the
writer uses tensorboard's own TensorFlow stub instead (`_without_tensorflow`).
"""

import json
import os
import sys
import time
import types
from typing import Any, Mapping

from absl import logging
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def _without_tensorflow(logdir: str) -> None:
  """Has tensorboard's compat layer resolve to its own stub, not TensorFlow.

  `tensorboard.compat.notf` is tensorboard's own switch (its notf builds): if
  that module imports, `tensorboard.compat.tf` is the bundled stub, whose gfile
  writes local files byte for byte as TensorFlow's does. Only for a local
  logdir (TensorFlow's gfile is kept for gs:// and other remote paths), and
  only before TensorFlow is imported (after, it costs nothing).
  """
  if '://' in logdir or 'tensorflow' in sys.modules:
    return
  sys.modules.setdefault('tensorboard.compat.notf',
                         types.ModuleType('tensorboard.compat.notf'))


class MetricWriter:
  """Scalars to TensorBoard event files in `logdir` (process 0) and to the log.

  Args:
    logdir: the folder of the event files (created).
    just_logging: write nothing to disk, only log (other processes than 0).
  """

  def __init__(self, logdir: str, *, just_logging: bool = False):
    self._logdir = logdir
    if not just_logging:
      _without_tensorflow(os.fspath(logdir))
    self._writer = None if just_logging else EventFileWriter(logdir)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """One scalar summary per name at `step`; also logged at INFO."""
    logging.info('[%d] %s', step, ', '.join(f'{k}={float(v):.6g}' for k, v in scalars.items()))
    if self._writer is None:
      return
    values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v))
              for k, v in scalars.items()]
    self._writer.add_event(event_pb2.Event(
        wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values)))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """The flattened config as `hparams.json` in the logdir."""
    logging.info('hparams: %s', dict(hparams))
    if self._writer is None:
      return
    with open(os.path.join(self._logdir, 'hparams.json'), 'w') as f:
      json.dump({k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
                 for k, v in hparams.items()}, f, indent=1, sort_keys=True)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def __enter__(self) -> 'MetricWriter':
    return self

  def __exit__(self, *exc) -> None:
    self.close()
