"""Install the GUIDE toolkit: the `guide` method package plus our EG3D and GOAE architectures."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def _version() -> str:
    for line in (ROOT / "guide" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("guide/__init__.py has no __version__")


def _packages(root: str, name: str) -> dict:
    """Map every package below `root` to its import name below `name`."""
    mapping = {name: root}
    for sub in find_packages(root):
        mapping[f"{name}.{sub}"] = f"{root}/{sub.replace('.', '/')}"
    return mapping


package_dir = {}
package_dir.update(_packages("third_party/eg3d", "eg3d"))
package_dir.update(_packages("third_party/goae", "goae"))

setup(
    name="guide-unlearning",
    version=_version(),
    description="Generative identity unlearning for EG3D (a reimplementation of GUIDE, CVPR 2024)",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["guide", "guide.*"]) + sorted(package_dir),
    package_dir=package_dir,
    package_data={
        "eg3d.ops": ["cuda/*.cu", "cuda/*.cpp", "cuda/*.h"],
        "guide": ["checkpoints_manifest.json"],
        "guide.toy": ["weights/*.safetensors", "weights/*.json"],  # the toy world (guide demo, effect tests)
    },
    install_requires=[
        "torch>=2.1",
        "torchvision",
        "numpy",
        "pillow",
        "click>=8",
        "tqdm",
        "safetensors",
        "ninja",
        "lpips",
        "facenet-pytorch==2.5.3",
        "pytorch-fid>=0.3.0",
        "pyyaml>=6",
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-xdist>=3", "ray[default]>=2.9"],  # xdist: two test workers; ray: the Ray batch tests
        "ray": ["ray[default]>=2.9"],  # guide batch with executor: ray
    },
    entry_points={"console_scripts": ["guide=guide.cli:main"]},
)
