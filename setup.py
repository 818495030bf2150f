"""The one thing pyproject.toml cannot say: install litlab_torchvision_fix.pth into site-packages.

At interpreter start that .pth makes torchvision importable on CPU-only torch whatever is imported
first, a notebook's ``import lightning`` included (src/litlab_torchvision_fix.py). A wheel's data
files land under the install prefix, so the .pth goes to the prefix's purelib folder relative to
it (``lib/python3.X/site-packages`` in a venv), computed by the interpreter that runs the build,
which is the one pip installs into.
"""

import os
import sysconfig

from setuptools import setup
from setuptools.dist import Distribution

SITE_PACKAGES = os.path.relpath(sysconfig.get_path("purelib"), sysconfig.get_path("data"))


class DataFilesInEditableInstalls(Distribution):
    """``pip install -e`` (setuptools' editable_wheel) installs data files only if the distribution
    answers ``has_data()``; distutils names that ``has_data_files()``, so without this alias the
    .pth would come with ``pip install .`` but not with ``make install``'s ``pip install -e``."""

    def has_data(self) -> bool:
        return self.has_data_files()


setup(distclass=DataFilesInEditableInstalls, data_files=[(SITE_PACKAGES, ["src/litlab_torchvision_fix.pth"])])
