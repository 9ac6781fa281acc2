"""Clean-room EG3D tri-plane generator, compatible with the official checkpoints."""
import importlib

_EXPORTS = {
    "TriPlaneGenerator": "triplane",
    "load_network_pkl": "network_pkl",
    "UnsafeCheckpointError": "network_pkl",
    "CheckpointFormatError": "network_pkl",
    "LookAtPoseSampler": "camera",
    "GaussianCameraPoseSampler": "camera",
    "UniformCameraPoseSampler": "camera",
    "camera_params": "camera",
    "FOV_to_intrinsics": "camera",
    "create_cam2world_matrix": "camera",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'eg3d' has no attribute {name!r}")
