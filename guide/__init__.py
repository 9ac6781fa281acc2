"""GUIDE: generative identity unlearning for 3D-aware face generators (EG3D)."""

__version__ = "0.1.0"
