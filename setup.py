"""Maps the top-level pipeline folders onto one import namespace.

The repository shows the pipeline (``train/``, ``export/``, ``runtime/``) while users import
``maskrt.train``, ``maskrt.export`` and ``maskrt.runtime``. Metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = {"maskrt": "maskrt", "maskrt.train": "train", "maskrt.export": "export", "maskrt.runtime": "runtime"}
DATA_FOLDERS = {"maskrt.runtime.models": "runtime/models", "maskrt.train.models": "train/models"}
"""Folders of bundled model files (no Python code); their files are listed in pyproject's package-data."""

package_dir = {}
packages = []
for name, folder in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
for name, folder in DATA_FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)

setup(package_dir=package_dir, packages=packages)
