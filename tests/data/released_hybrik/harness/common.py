"""Harness: run the released HybrIK camera models (9b8681d) as they are.

Shims (stand-ins, the released files are not edited): torchvision (no ImageNet
weights), pycocotools, pytorch3d, easydict. Body files of the project's synthetic
body written under SRC/model_files (the models read them from the cwd).

SRC ($HYBRIK_SRC): a directory holding the released `hybrik/` and `configs/`,
exported from the mirror (no released code is in this repository):
  git -C /work/.mirror/Jeff-sjtu+HybrIK/repo archive HEAD hybrik configs | tar -x -C $HYBRIK_SRC
"""
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get('HYBRIK_SRC', HERE))


def install_shims():
  sys.path.insert(0, os.path.join(HERE, 'shims'))
  sys.path.insert(0, SRC)

  class _Empty:
    def state_dict(self):
      return {}

  tv = types.ModuleType('torchvision')
  tvm = types.ModuleType('torchvision.models')
  for n in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'):
    setattr(tvm, n, lambda *a, **k: _Empty())
  tv.models = tvm
  sys.modules['torchvision'] = tv
  sys.modules['torchvision.models'] = tvm
  class _Stub(types.ModuleType):
    __path__ = []

    def __getattr__(self, name):
      if name.startswith('__'):
        raise AttributeError(name)
      def never(*a, **k):
        raise RuntimeError(f'{self.__name__}.{name}: a stand-in, never called here')
      return never
  for name in ('pycocotools', 'pycocotools.coco', 'pycocotools.mask', 'pytorch3d',
               'pytorch3d.transforms', 'pytorch3d.transforms.rotation_conversions',
               'pytorch3d.structures', 'pytorch3d.renderer'):
    sys.modules[name] = _Stub(name)


def write_body(project):
  """The synthetic body as the released SMPL files, under SRC/model_files."""
  sys.path.insert(0, project)
  from hybrik_jax.body import smpl_io, synthetic_body
  d = os.path.join(SRC, 'model_files')
  os.makedirs(d, exist_ok=True)
  pkl = os.path.join(d, 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl')
  if not os.path.exists(pkl):
    body = synthetic_body.synthetic_smpl_model(0)
    smpl_io.save_smpl_pkl(body, pkl)
    np.save(os.path.join(d, 'J_regressor_h36m.npy'), np.asarray(body.J_regressor_h36m, np.float64))
    np.save(os.path.join(d, 'h36m_mean_beta.npy'), np.random.default_rng(1234).normal(0, 0.5, 10))
