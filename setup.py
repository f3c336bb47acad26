"""Build the optional native layer (the C sources in csrc/); everything else is in
pyproject.toml. Two shared objects come out of it, both optional (a failed compile
leaves a working pure-Python package):

- sqlite_ml._native: the CPython module (csrc/sqml.h), linked to libpython when Python
  is a shared library so that a host program can start an interpreter through it;
- sqlite_ml/sqml.so: a plain SQLite loadable extension with no Python in it
  (csrc/extension.c): it scores natively served models in any program and loads
  _native only when a function needs Python (csrc/core.h, csrc/bridge.h).
"""

import re
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

libraries: list[str] = []
library_dirs: list[str] = []
# Linked to libpython when Python is a shared library, so that a host program without
# Python (the sqlite3 shell) can load the extension and start an interpreter.
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_python_version()
    libraries = [f"python{version}"]
    library_dirs = [libdir]

# The native scorer (pure C, see csrc/core.h), compiled into both shared objects.
NATIVE_CORE = [
    "csrc/sha256.c",
    "csrc/model_load.c",
    "csrc/model_score.c",
    "csrc/json_row.c",
    "csrc/deployed.c",
    "csrc/scoring.c",
    "csrc/table.c",
    "csrc/rows.c",
]
CORE_HEADERS = ["csrc/core.h", "csrc/model.h", "csrc/bridge.h"]
# -ffp-contract=off: no fused multiply-add, which would round differently from numpy;
# -fvisibility=hidden: only the entry points are exported (both objects may share one
# process).
COMPILE_ARGS = [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-missing-field-initializers",
    "-Wno-format-truncation",
    "-ffp-contract=off",
    "-fvisibility=hidden",
]
VERSION = re.search(
    r'__version__ = "([^"]+)"', Path("src/sqlite_ml/_version.py").read_text(encoding="utf-8")
)
PYTHON_MODULE_FILE = "_native" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


SHARED_MACROS = [("SQML_VERSION", _c_string(VERSION.group(1) if VERSION else "unknown"))]


class BuildExtensions(build_ext):
    """sqml.so keeps its plain name: it is a SQLite extension, not a Python module."""

    def get_ext_filename(self, fullname: str) -> str:
        # distutils asks with the last part of the name, setuptools with all of it
        if fullname in ("sqml", "sqlite_ml.sqml"):
            filename = "sqml" + (sysconfig.get_config_var("SHLIB_SUFFIX") or ".so")
            return filename if fullname == "sqml" else str(Path("sqlite_ml") / filename)
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext: Extension) -> list[str]:
        if ext.name == "sqlite_ml.sqml":
            return ["sqlite3_sqml_init", "sqlite3_extension_init"]
        return super().get_export_symbols(ext)


setup(
    cmdclass={"build_ext": BuildExtensions},
    ext_modules=[
        Extension(
            "sqlite_ml._native",
            sources=[
                "csrc/module.c",
                "csrc/values.c",
                "csrc/functions.c",
                "csrc/reader.c",
                "csrc/linear_quick.c",
                "csrc/host_entry.c",
                "csrc/bridge.c",
                "csrc/scorer_module.c",
                *NATIVE_CORE,
            ],
            depends=["csrc/sqml.h", *CORE_HEADERS],
            libraries=libraries,
            library_dirs=library_dirs,
            runtime_library_dirs=library_dirs,
            extra_compile_args=COMPILE_ARGS,
            # The environment a host program's interpreter starts in (see csrc/host_entry.c).
            define_macros=[
                ("SQML_PYTHON_EXECUTABLE", _c_string(sys.executable)),
                *SHARED_MACROS,
            ],
            optional=True,
        ),
        Extension(
            "sqlite_ml.sqml",
            sources=["csrc/extension.c", *NATIVE_CORE],
            depends=CORE_HEADERS,
            libraries=["dl", "m", "pthread"],
            extra_compile_args=COMPILE_ARGS,
            define_macros=[
                ("SQML_PYTHON_MODULE_FILE", _c_string(PYTHON_MODULE_FILE)),
                *SHARED_MACROS,
            ],
            optional=True,
        ),
    ],
)
