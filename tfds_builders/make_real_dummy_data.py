r"""Writes the tiny dummy_data/ of the real-dataset builders (h36m, pw3d, mpi_inf_3dhp, coco).

The files copy the source formats that HybrIK's readers parse (field names,
nesting, units, folder layout; for HybrIK's own parsed files only the fields
its readers use, since those are the ones we know; COCO's format is public); the people are a fixed stick figure placed in
front of a small pinhole camera, so 2D and 3D labels agree exactly:
`joints_img = project(joints_cam, K)`. Frames are 64x48 or 48x64 JPEGs of a
few hundred bytes.

  python -m tfds_builders.make_real_dummy_data   # rewrites all four dummy_data/

The builder tests read the committed files; this script only documents how
they were made and regenerates them identically (fixed seeds).
"""

import json
import pathlib
import shutil

import cv2
import numpy as np

_HERE = pathlib.Path(__file__).parent

# A standing person, SMPL's 24 joints + HybrIK's 5 leaves (constants.SMPL29_JOINT_NAMES),
# metres, x to the person's left, y up, z towards the camera.
_TEMPLATE_29 = np.array([
    (0.0, 0.0, 0.0), (0.08, -0.08, 0.0), (-0.08, -0.08, 0.0),
    (0.0, 0.1, 0.0), (0.1, -0.45, 0.0), (-0.1, -0.45, 0.0),
    (0.0, 0.22, 0.0), (0.1, -0.85, 0.0), (-0.1, -0.85, 0.0),
    (0.0, 0.28, 0.0), (0.12, -0.9, 0.1), (-0.12, -0.9, 0.1),
    (0.0, 0.48, 0.0), (0.07, 0.42, 0.0), (-0.07, 0.42, 0.0),
    (0.0, 0.55, 0.03),
    (0.17, 0.42, 0.0), (-0.17, 0.42, 0.0),
    (0.2, 0.15, 0.0), (-0.2, 0.15, 0.0),
    (0.22, -0.1, 0.0), (-0.22, -0.1, 0.0),
    (0.23, -0.18, 0.02), (-0.23, -0.18, 0.02),
    (0.0, 0.7, 0.0), (0.23, -0.2, 0.0), (-0.23, -0.2, 0.0),
    (0.12, -0.92, 0.15), (-0.12, -0.92, 0.15),
])
# Where each dataset's joints sit on the template (indices into _TEMPLATE_29).
_H36M_FROM_29 = (0, 2, 5, 8, 1, 4, 7, 6, 12, 15, 24, 16, 18, 20, 17, 19, 21)
_HP3D28_FROM_29 = (9, 9, 6, 3, 0, 12, 15, 24, 13, 16, 18, 20, 25, 14, 17, 19, 21,
                   26, 1, 4, 7, 10, 27, 2, 5, 8, 11, 28)
# The 17 joints of the MPI-INF-3DHP test set, as indices into its 28 (HybrIK hp3d.py).
_HP3D_TEST_FROM_28 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
_COCO_FROM_29 = (15, 15, 15, 24, 24, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)


def _person(rng: np.random.Generator, depth: float, x: float = 0.0) -> np.ndarray:
  """(29, 3) camera-frame joints (y down), metres, slightly jittered and turned."""
  yaw = rng.uniform(-0.6, 0.6)
  rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0],
                  [-np.sin(yaw), 0, np.cos(yaw)]])
  joints = _TEMPLATE_29 @ rot.T + rng.normal(0, 0.01, _TEMPLATE_29.shape)
  joints[:, 1] *= -1.0  # camera y points down
  return joints + np.array([x, 0.0, depth])


def _project(points: np.ndarray, f, c) -> np.ndarray:
  return points[:, :2] / points[:, 2:3] * np.asarray(f) + np.asarray(c)


def _xywh(points_px: np.ndarray, pad: float = 2.0) -> list[float]:
  lo, hi = points_px.min(0) - pad, points_px.max(0) + pad
  return [round(float(v), 3) for v in (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])]


def _write_jpeg(path: pathlib.Path, rng: np.random.Generator, width: int,
                height: int) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  yy, xx = np.mgrid[0:height, 0:width]
  img = np.stack([xx * 255 // width, yy * 255 // height,
                  np.full_like(xx, int(rng.integers(0, 255)))], -1)
  img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
  cv2.imwrite(str(path), img, [int(cv2.IMWRITE_JPEG_QUALITY), 70])


def _rounded(a, digits: int = 4):
  return np.round(np.asarray(a, np.float64), digits).tolist()


def _reset(folder: pathlib.Path) -> pathlib.Path:
  if folder.exists():
    shutil.rmtree(folder)
  folder.mkdir(parents=True)
  return folder


def make_h36m(rng: np.random.Generator) -> None:
  """h36m/annotations/*_protocol_2.json (images + annotations, mm) and h36m/images/."""
  root = _reset(_HERE / 'h36m' / 'dummy_data') / 'h36m'
  w = h = 64
  f, c = [60.0, 60.5], [31.5, 32.0]
  specs = {
      'Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json': [
          (1, 2, 1, 1, True), (5, 3, 2, 2, True), (8, 15, 1, 3, False)],
      'Sample_20_test_Human36M_smpl_protocol_2.json': [
          (9, 2, 1, 1, None), (11, 4, 2, 4, None),
          (9, 5, 2, 2, None)],  # the last one is on HybrIK's block list
  }
  image_id = 0
  for ann_name, rows in specs.items():
    images, annotations = [], []
    for subject, act, subact, cam, twist_ok in rows:
      seq = f's_{subject:02d}_act_{act:02d}_subact_{subact:02d}_ca_{cam:02d}'
      file_name = f'{seq}/{seq}_{image_id + 1:06d}.jpg'
      _write_jpeg(root / 'images' / file_name, rng, w, h)
      joints = _person(rng, depth=rng.uniform(4.5, 5.5), x=rng.uniform(-0.2, 0.2))
      joints_mm = joints * 1000.0
      h36m = joints_mm[list(_H36M_FROM_29)]
      h36m[0] += [0.0, -25.0, 15.0]  # the H36M pelvis is not the SMPL pelvis
      smpl = joints_mm if twist_ok is not None else joints_mm[:24]
      images.append({'id': image_id, 'file_name': file_name, 'width': w,
                     'height': h, 'cam_param': {'f': f, 'c': c}})
      ann = {
          'id': image_id, 'image_id': image_id,
          'bbox': _xywh(_project(joints, f, c)),
          'h36m_joints': _rounded(h36m.reshape(-1), 2),
          'smpl_joints': _rounded(smpl.reshape(-1), 2),
          'root_coord': _rounded(h36m[0], 2),
          'thetas': _rounded(rng.normal(0, 0.2, 72)),
          'betas': _rounded(rng.normal(0, 1, 10)),
      }
      if twist_ok is not None:
        angle = rng.uniform(-np.pi, np.pi, 23)
        if not twist_ok:
          angle[[3, 7]] = -999.0  # HybrIK's marker of an undefined twist
        ann['angle_twist'] = {'angle': _rounded(angle), 'cos': _rounded(np.cos(angle)),
                              'sin': _rounded(np.sin(angle))}
      annotations.append(ann)
      image_id += 1
    path = root / 'annotations' / ann_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'images': images, 'annotations': annotations}))


def make_pw3d(rng: np.random.Generator) -> None:
  """pw3d/json/3DPW_{split}_new.json (COCO style, metres) and pw3d/imageFiles/."""
  root = _reset(_HERE / 'pw3d' / 'dummy_data') / 'pw3d'
  w, h = 48, 64  # portrait, as 3DPW's 1080x1920 phone videos
  f, c = [55.0, 55.0], [23.5, 31.5]
  plan = {'train': ('courtyard_arguing_00', 2, 2), 'validation': ('downtown_bus_00', 1, 2),
          'test': ('downtown_walking_00', 2, 1)}
  ann_id = 0
  for split, (sequence, num_frames, people) in plan.items():
    images, annotations = [], []
    for frame in range(num_frames):
      image_id = len(images)
      file_name = f'image_{frame * 7:05d}.jpg'
      _write_jpeg(root / 'imageFiles' / sequence / file_name, rng, w, h)
      images.append({'id': image_id, 'file_name': file_name, 'sequence': sequence,
                     'width': w, 'height': h,
                     'cam_param': {'focal': f, 'princpt': c}})
      for person in range(people):
        joints = _person(rng, depth=rng.uniform(4.0, 5.0),
                         x=(person - 0.5 * (people - 1)) * 0.5)
        img24 = np.concatenate([_project(joints[:24], f, c), joints[:24, 2:3]], 1)
        annotations.append({
            'id': ann_id, 'image_id': image_id, 'bbox': _xywh(_project(joints, f, c)),
            'smpl_param': {'shape': _rounded(rng.normal(0, 1, 10)),
                           'pose': _rounded(rng.normal(0, 0.2, 72)),
                           'trans': _rounded(joints[0]),
                           'gender': 'male' if person == 0 else 'female'},
            'h36m_joints': _rounded(joints[list(_H36M_FROM_29)].reshape(-1), 5),
            'smpl_joint_cam': _rounded(joints[:24], 5),
            'smpl_joint_img': _rounded(img24, 3),
        })
        ann_id += 1
    path = root / 'json' / f'3DPW_{split}_new.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'images': images, 'annotations': annotations,
                                'categories': [{'id': 1, 'name': 'person'}]}))


def make_mpi_inf_3dhp(rng: np.random.Generator) -> None:
  """3dhp/annotation_mpi_inf_3dhp_{train_v2,test}.json (mm, 3x4 K) and the image sets."""
  root = _reset(_HERE / 'mpi_inf_3dhp' / 'dummy_data') / '3dhp'
  w = h = 64
  plan = {
      'train_v2': ('mpi_inf_3dhp_train_set', [('S1/Seq1/images/S1_Seq1_V0', 1),
                                              ('S3/Seq2/images/S3_Seq2_V8', 41),
                                              ('S7/Seq1/images/S7_Seq1_V2', 81)]),
      'test': ('mpi_inf_3dhp_test_set', [('TS1/imageSequence', 1),
                                         ('TS5/imageSequence', 121)]),
  }
  for name, (set_dir, frames) in plan.items():
    images, annotations = [], []
    for image_id, (folder, frame_idx) in enumerate(frames):
      stem = folder.split('/')[-1] if name != 'test' else 'img'
      file_name = f'{folder}/{stem}_{frame_idx:06d}.jpg'
      _write_jpeg(root / set_dir / file_name, rng, w, h)
      f, c = [58.0 + image_id, 59.0], [32.0, 31.0 + image_id]
      K34 = [[f[0], 0.0, c[0], 0.0], [0.0, f[1], c[1], 0.0], [0.0, 0.0, 1.0, 0.0]]
      joints28 = _person(rng, depth=rng.uniform(4.0, 5.0))[list(_HP3D28_FROM_29)]
      joints = joints28 if name != 'test' else joints28[list(_HP3D_TEST_FROM_28)]
      image = {'id': image_id, 'file_name': file_name, 'width': w, 'height': h,
               'cam_param': {'intrinsic_param': K34}}
      ann = {'id': image_id, 'image_id': image_id,
             'bbox': _xywh(_project(joints28, f, c)),
             'keypoints_cam': _rounded(joints * 1000.0, 2)}
      if name == 'test':
        ann['activity_id'] = 1 + image_id
      images.append(image)
      annotations.append(ann)
    (root / f'annotation_mpi_inf_3dhp_{name}.json').write_text(
        json.dumps({'images': images, 'annotations': annotations}))


def make_coco(rng: np.random.Generator) -> None:
  """coco/annotations/person_keypoints_{train,val}2017.json and coco/{train,val}2017/."""
  root = _reset(_HERE / 'coco_keypoints' / 'dummy_data') / 'coco'
  f, c = 50.0, 32.0
  ann_id = 100
  # (image size, [person kinds]); kinds: 'ok', 'crowd', 'nokp', 'partial'
  plan = {
      'train2017': [((64, 48), ['ok', 'partial']), ((48, 64), ['ok', 'crowd']),
                    ((64, 48), ['nokp'])],
      'val2017': [((64, 48), ['ok']), ((64, 48), ['partial', 'ok'])],
  }
  for split, frames in plan.items():
    images, annotations = [], []
    for n, ((w, h), kinds) in enumerate(frames):
      image_id = (391895 if split == 'train2017' else 397133) + 11 * n
      file_name = f'{image_id:012d}.jpg'
      _write_jpeg(root / split / file_name, rng, w, h)
      images.append({'license': 1, 'file_name': file_name, 'height': h, 'width': w,
                     'coco_url': f'http://images.cocodataset.org/{split}/{file_name}',
                     'date_captured': '2013-11-14 11:18:45',
                     'flickr_url': 'http://farm9.staticflickr.com/0/0.jpg',
                     'id': image_id})
      for p, kind in enumerate(kinds):
        joints = _person(rng, depth=rng.uniform(3.5, 4.0), x=(p - 0.5) * 0.6)
        pts = _project(joints, [f, f], [0.5 * w, 0.5 * h])[list(_COCO_FROM_29)]
        vis = np.full(17, 2)
        vis[[1, 3]] = 1
        if kind == 'partial':
          vis[[0, 2, 4, 13, 15]] = 0
        if kind == 'nokp':
          vis[:] = 0
        kps = np.concatenate([np.round(pts, 1), vis[:, None]], 1)
        kps[vis == 0, :2] = 0
        x, y, bw, bh = _xywh(pts)
        annotations.append({
            'segmentation': [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
            'num_keypoints': int((vis > 0).sum()),
            'area': round(bw * bh * 0.6, 2), 'iscrowd': int(kind == 'crowd'),
            'keypoints': [int(v) if float(v).is_integer() else float(v)
                          for v in kps.reshape(-1)],
            'image_id': image_id, 'bbox': [x, y, bw, bh], 'category_id': 1,
            'id': ann_id})
        ann_id += 1
    path = root / 'annotations' / f'person_keypoints_{split}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        'info': {'description': 'dummy COCO 2017', 'version': '1.0', 'year': 2017},
        'licenses': [{'url': 'http://creativecommons.org/licenses/by-nc-sa/2.0/',
                      'id': 1, 'name': 'Attribution-NonCommercial-ShareAlike License'}],
        'images': images, 'annotations': annotations,
        'categories': [{'supercategory': 'person', 'id': 1, 'name': 'person',
                        'keypoints': ['nose', 'left_eye', 'right_eye', 'left_ear',
                                      'right_ear', 'left_shoulder', 'right_shoulder',
                                      'left_elbow', 'right_elbow', 'left_wrist',
                                      'right_wrist', 'left_hip', 'right_hip',
                                      'left_knee', 'right_knee', 'left_ankle',
                                      'right_ankle'],
                        'skeleton': [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13],
                                     [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                                     [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                                     [4, 6], [5, 7]]}],
    }))


def main() -> None:
  make_h36m(np.random.default_rng(0))
  make_pw3d(np.random.default_rng(1))
  make_mpi_inf_3dhp(np.random.default_rng(2))
  make_coco(np.random.default_rng(3))


if __name__ == '__main__':
  main()
