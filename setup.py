from setuptools import find_packages, setup

setup(
    name="tinymeta",
    version="0.1.0",
    description="Gradient-based meta-learning from scratch on NumPy/CuPy: an autodiff engine with "
                "gradients of gradients, MAML, Meta-SGD, Reptile, ANIL",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["tinymeta", "tinymeta.*"]),
    # Each floor is tested: .ci/run's second pass installs exactly these (.ci/constraints-oldest.txt) on
    # the oldest Python. NumPy 1.24.0's masked_invalid breaks matplotlib 3.6.0's fill_between (1.24.1
    # restored it); ipykernel before 6.3.1 imports ipython_genutils without requiring it, so its kernel dies.
    install_requires=["numpy>=1.24.1", "matplotlib>=3.6", "tqdm>=4.60", "pillow>=9.0"],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6.70", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6.3.1", "pdoc>=14"],
        "notebooks": ["jupyter"],
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=13.6"],
    },
    entry_points={"console_scripts": ["tinymeta=tinymeta.experiment.cli:main"]},
)
