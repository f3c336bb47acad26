"""Build the optional native layer (the C sources in csrc/, see csrc/sqml.h) as the module
sqlite_ml._native; everything else is in pyproject.toml. A failed compile leaves a working
pure-Python package (``optional``)."""

import sys
import sysconfig

from setuptools import Extension, setup

libraries: list[str] = []
library_dirs: list[str] = []
# Linked to libpython when Python is a shared library, so that a host program without
# Python (the sqlite3 shell) can load the extension and start an interpreter.
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_python_version()
    libraries = [f"python{version}"]
    library_dirs = [libdir]



def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


setup(
    ext_modules=[
        Extension(
            "sqlite_ml._native",
            sources=[
                "csrc/module.c",
                "csrc/values.c",
                "csrc/functions.c",
                "csrc/reader.c",
                "csrc/predict_table.c",
                "csrc/rows_table.c",
                "csrc/linear_quick.c",
                "csrc/host_entry.c",
            ],
            depends=["csrc/sqml.h"],
            libraries=libraries,
            library_dirs=library_dirs,
            runtime_library_dirs=library_dirs,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            # The environment a host program's interpreter starts in (see csrc/host_entry.c).
            define_macros=[("SQML_PYTHON_EXECUTABLE", _c_string(sys.executable))],
            optional=True,
        )
    ]
)
