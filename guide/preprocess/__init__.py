"""In-the-wild preprocessing: any photo -> the aligned 512x512 crop FFHQ-trained EG3D / GOAE expect.

``align_photo(path_or_image, face_index=None)`` returns an :class:`AlignedPhoto` with ``image``
(512x512 RGB), ``landmarks`` ([5, 2] in the photo), ``matrix`` (2x3 photo -> crop), ``camera``
([1, 25] EG3D camera of the photo's viewpoint), ``num_faces``, ``face_index``, ``probability`` and
``notes``. Modules: :mod:`~guide.preprocess.align` (the pipeline), :mod:`~guide.preprocess.template`
(the crop template and how it was derived), :mod:`~guide.preprocess.landmarks` (multi-view
landmarks), :mod:`~guide.preprocess.pose` (head pose, camera), :mod:`~guide.preprocess.geometry`
(matrices, warp), :mod:`~guide.preprocess.calibrate` (re-deriving the template).

Measured accuracy (CPU, facenet-pytorch 2.5.3 MTCNN, ``../shared/faces``; asserted in
``tests/guide/preprocess``). Geometric error: the aligned original's (steady) landmarks carried into
the wild photo by the known transform and back by our photo -> crop matrix; mean (max) distance in
crop pixels, and PSNR of our crop against the aligned original:

====================================================  =======================  =======================
method                                                wild_1 (rot 14, x0.55)    wild_2 (rot -9, x0.80)
====================================================  =======================  =======================
one detection, similarity fit to the mean landmarks   10.9 (14.3) px, 15.9 dB  6.5 (7.6) px, 21.0 dB
one detection, template crop (``refine_steps=0``)     5.4 (8.6) px, 17.6 dB    2.4 (3.0) px, 24.2 dB
:func:`align_photo` (default, 2 refinement rounds)    1.0 (1.4) px, 27.5 dB    2.6 (3.2) px, 26.9 dB
same, template from the two *other* aligned photos    1.7 (2.5) px, 22.7 dB    3.6 (4.0) px, 24.5 dB
the exact inverse transform (JPEG + resampling)       0 px, 33.6 dB            0 px, 37.0 dB
====================================================  =======================  =======================

What is left is the template, not the landmarks: the template reproduces the aligned photos' own
framing to 1.55 px in-sample / 2.6 px leave-one-out (:mod:`~guide.preprocess.template`).

Head pose (:mod:`~guide.preprocess.pose`): weak-perspective fit of a generic 3-D five-point face;
exact on noise-free synthetic projections; with 2 px landmark noise (136 px between the eyes) yaw /
elevation errors average ~1.5 deg (90th percentile ~3 deg); with individual face-shape variation of
~2 mm, ~2.6 deg (90th percentile ~5 deg). On real faces the depth prior of the model adds a few
degrees of bias. Estimates on the aligned photos: aligned_1 yaw +9 deg / elevation -5 deg,
aligned_2 +13 / +2, aligned_3 +11 / +9 (the wild copies agree within 2 deg).

Speed: about 3 s per photo on one CPU thread (33 MTCNN passes). MTCNN slows down a lot when torch's
threads contend for a few shared cores; ``torch.set_num_threads(1)`` helps there.
"""
from guide.preprocess.align import AlignedPhoto, FaceIndexError, FaceTooSmallError, align_photo, rank_faces
from guide.preprocess.geometry import apply_affine, compose, invert_affine, similarity, warp
from guide.preprocess.pose import HeadPose, eg3d_pitch, fit_pose, pose_camera
from guide.preprocess.template import DEFAULT_TEMPLATE, CropTemplate, crop_matrix, derive_template

__all__ = [
    "AlignedPhoto",
    "CropTemplate",
    "DEFAULT_TEMPLATE",
    "FaceIndexError",
    "FaceTooSmallError",
    "HeadPose",
    "align_photo",
    "apply_affine",
    "compose",
    "crop_matrix",
    "derive_template",
    "eg3d_pitch",
    "fit_pose",
    "invert_affine",
    "pose_camera",
    "rank_faces",
    "similarity",
    "warp",
]
