"""RootNet's published root positions, for evaluating with estimated roots.

The uvd -> camera-space lifting needs the absolute depth of the root. HybrIK's
evaluation uses the ground-truth root; `load_rootnet` reads the roots
published by RootNet (3DMPPE_ROOTNET_RELEASE, `bbox_root_*_output.json`: a
list of {'image_id', 'root_cam' (mm), ...}), used where an example matches
(`evaluation.loop.run(roots=...)`). Entries are matched to examples by file
name (keys 'file_name', 'img_name', 'image_file', 'img_path' or 'imgname'),
or by 'image_id' through a COCO-style annotation file (e.g. HybrIK's
Sample_20_test_Human36M_smpl_protocol_2.json: images[{id, file_name}]).
"""

import json
import os
import re
from typing import Mapping

import numpy as np

from hybrik_jax.evaluation import metrics


def _path_keys(path: str) -> list[str]:
  """Lookup keys of a file path: its last two components, then its base name."""
  parts = re.split(r'[/\\]+', str(path).strip())
  parts = [p for p in parts if p and p != '.']
  keys = []
  if len(parts) >= 2:
    keys.append('/'.join(parts[-2:]))
  if parts:
    keys.append(parts[-1])
  return keys


class RootTable:
  """Published root positions, looked up by an example's image_file.

  Attributes:
    source: the json file name (for the table).
  """

  def __init__(self, roots_by_file: Mapping[str, np.ndarray], source: str):
    self.source = source
    self._by_key: dict[str, np.ndarray] = {}
    ambiguous = set()
    for file_name, root in roots_by_file.items():
      for i, key in enumerate(_path_keys(file_name)):
        if key in self._by_key and i > 0:
          ambiguous.add(key)  # a base name shared by several files
        self._by_key.setdefault(key, root)
    for key in ambiguous:
      self._by_key.pop(key, None)

  def __len__(self) -> int:
    return len(self._by_key)

  def lookup(self, image_file: str) -> np.ndarray | None:
    """(3,) metres, camera frame, or None if the file is not in the table."""
    for key in _path_keys(image_file):
      if key in self._by_key:
        return self._by_key[key]
    return None


_FILE_KEYS = ('file_name', 'img_name', 'image_file', 'img_path', 'imgname')


def load_rootnet(json_path: str, annotations_path: str | None = None) -> RootTable:
  """Reads RootNet's output json (root_cam in millimetres) into a RootTable.

  Args:
    json_path: a list of entries with 'root_cam' [x, y, z] mm and either a
      file name key (see module docstring) or 'image_id'.
    annotations_path: a COCO-style json with 'images': [{'id', 'file_name'}]
      to resolve image ids.

  Raises:
    FileNotFoundError, ValueError: naming the file and what is wrong.
  """
  if not os.path.isfile(json_path):
    raise FileNotFoundError(f'RootNet json {json_path!r} not found')
  with open(json_path) as f:
    entries = json.load(f)
  if isinstance(entries, dict):  # {image_id: {...}} variants
    entries = [dict(v, image_id=k) for k, v in entries.items()]
  if not isinstance(entries, list) or not entries:
    raise ValueError(f'{json_path}: expected a non-empty list of entries with '
                     "'root_cam' (RootNet's bbox_root_*_output.json)")
  id_to_file = {}
  if annotations_path:
    if not os.path.isfile(annotations_path):
      raise FileNotFoundError(f'annotation json {annotations_path!r} not found')
    with open(annotations_path) as f:
      ann = json.load(f)
    images = ann.get('images', []) if isinstance(ann, dict) else []
    id_to_file = {str(im['id']): im['file_name'] for im in images
                  if 'id' in im and 'file_name' in im}
    if not id_to_file:
      raise ValueError(f"{annotations_path}: no 'images' with 'id' and "
                       "'file_name' (a COCO-style annotation file)")
  roots = {}
  for i, entry in enumerate(entries):
    if 'root_cam' not in entry:
      raise ValueError(f"{json_path}: entry {i} has no 'root_cam' "
                       f'(keys {sorted(entry)})')
    root = np.asarray(entry['root_cam'], np.float64).reshape(-1)
    if root.shape != (3,) or not np.all(np.isfinite(root)):
      raise ValueError(f"{json_path}: entry {i} 'root_cam' must be 3 finite "
                       f'numbers, got {entry["root_cam"]!r}')
    name = next((entry[k] for k in _FILE_KEYS if k in entry), None)
    if name is None and 'image_id' in entry:
      if not id_to_file:
        raise ValueError(
            f'{json_path} identifies images by image_id only: pass the '
            'annotation file that lists them (--rootnet_annotations, e.g. '
            "HybrIK's Sample_20_test_Human36M_smpl_protocol_2.json)")
      name = id_to_file.get(str(entry['image_id']))
    if name is not None:
      roots[str(name)] = (root / metrics.MM_PER_METRE).astype(np.float32)
  if not roots:
    raise ValueError(f'{json_path}: no entry could be tied to an image file')
  return RootTable(roots, os.path.basename(json_path))
