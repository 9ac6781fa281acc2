"""Identity networks: ArcFace IR-SE50 identity loss, CurricularFace IR-101 similarity, MTCNN alignment.

* :func:`ir_se50`, :func:`ir101` -- the backbones (official state_dict keys, eval mode,
  ``[N,3,112,112] -> unit [N,512]``); pass ``weights=`` the official file to load it.
* :class:`IDLoss` -- GUIDE's identity loss on generator images (crop + pool, 1 - cosine).
* :func:`detect_faces` / :class:`FaceDetector` -- MTCNN faces with five landmarks.
* :func:`align_face` -- landmarks -> similarity transform -> 112x112 crop.
* :class:`IDSimilarity` -- detect, align, embed, cosine similarity.
* :func:`inception_resnet_v1` -- optional facenet-pytorch alternative backbone.

Upstream quirks reproduced by default are listed in each module's docstring.
"""
from guide.identity.align import (
    REFERENCE_POINTS_112,
    AlignmentError,
    align_face,
    similarity_candidates,
    similarity_matrix,
    warp_affine,
)
from guide.identity.backbones import (
    IRBackbone,
    InceptionResnetV1Embedder,
    VGGFACE2_FILE,
    inception_resnet_v1,
    ir101,
    ir_se50,
)
from guide.identity.detect import Face, FaceDetector, NoFaceError, detect_faces
from guide.identity.idloss import IDLoss, idloss_preprocess
from guide.identity.similarity import IDSimilarity, crops_to_tensor, load_rgb
from guide.identity.weights import WeightsError, load_state_dict_file

__all__ = [
    "AlignmentError",
    "Face",
    "FaceDetector",
    "IDLoss",
    "IDSimilarity",
    "IRBackbone",
    "InceptionResnetV1Embedder",
    "NoFaceError",
    "REFERENCE_POINTS_112",
    "VGGFACE2_FILE",
    "WeightsError",
    "align_face",
    "crops_to_tensor",
    "detect_faces",
    "idloss_preprocess",
    "inception_resnet_v1",
    "ir101",
    "ir_se50",
    "load_rgb",
    "load_state_dict_file",
    "similarity_candidates",
    "similarity_matrix",
    "warp_affine",
]
