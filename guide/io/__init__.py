"""Weight files in and out: our safetensors+JSON generator format, EG3D pickle export,
plain state files, and the helpers they share (atomic writes, hashing, one-line errors).

Names are imported lazily so that ``import guide.io`` stays cheap (no torch until needed).
"""
from guide.lazy import lazy_getattr

_EXPORTS = {
    "save_generator": "generator_io",
    "load_generator": "generator_io",
    "generator_spec": "generator_io",
    "generator_paths": "generator_io",
    "read_generator_config": "generator_io",
    "GeneratorSpec": "generator_io",
    "GeneratorFiles": "generator_io",
    "Provenance": "generator_io",
    "load_any_generator": "load_any",
    "export_eg3d_pkl": "eg3d_export",
    "load_state_file": "state_files",
    "sha256_file": "hashing",
    "atomic_open": "atomic",
    "atomic_path": "atomic",
    "write_bytes_atomic": "atomic",
    "write_text_atomic": "atomic",
    "plan_output_folder": "folders",
    "open_output_folder": "folders",
    "remove_outputs": "folders",
    "OutputFolderError": "folders",
    "CheckpointFileError": "errors",
    "MissingCheckpointError": "errors",
    "CorruptCheckpointError": "errors",
    "IncompatibleGeneratorError": "errors",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
