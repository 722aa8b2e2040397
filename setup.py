"""minicnn: a from-scratch, readable CNN (NumPy, optional CuPy + CUDA) that shows what VGG19 sees."""
from setuptools import find_packages, setup

setup(
    name="minicnn",
    version="0.1.0",
    description="A readable CNN with hand-written backprop: feature visualization and saliency maps",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    # The CUDA sources (kernels/) and the shipped model (weights/) live at the top of the
    # checkout; in an installed package they become minicnn/kernels and minicnn/shipped.
    packages=find_packages(include=["minicnn", "minicnn.*"]) + ["minicnn.kernels", "minicnn.shipped"],
    package_dir={"minicnn.kernels": "kernels", "minicnn.shipped": "weights"},
    package_data={"minicnn": ["data/*"], "minicnn.kernels": ["*.cu", "*.md"], "minicnn.shipped": ["*.h5", "*.md"]},
    install_requires=["numpy>=1.22", "pillow>=9", "h5py>=3", "tqdm>=4.60", "matplotlib>=3.5"],
    extras_require={
        "test": ["pytest>=7"],
        "cuda12": ["cupy-cuda12x>=13"],   # NVIDIA driver + CUDA 12.x
        "cuda13": ["cupy-cuda13x>=14"],   # NVIDIA driver + CUDA 13.x
    },
)
