"""Clean-room GOAE inversion encoder (Swin Transformer V2 backbone + latent heads), compatible
with the official `encoder_FFHQ.pt`. Architecture only: no GUIDE logic lives here."""
from .config import GOAEConfig, SwinV2Config
from .encoder import GOAEncoder
from .swin import SwinFeatures, SwinTransformerV2

__all__ = ["GOAEConfig", "GOAEncoder", "SwinFeatures", "SwinTransformerV2", "SwinV2Config"]
