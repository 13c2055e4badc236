"""Build script: compiles ext/ into the extension module ``exchange._core``.

Set ``EXCHANGE_PUREPYTHON=1`` to skip the build; the package then runs its pure-Python reference.
A build that is wanted but fails is an error (no silent fallback).
"""
import os
from pathlib import Path

from setuptools import setup

PURE_PYTHON = os.environ.get("EXCHANGE_PUREPYTHON", "") not in ("", "0")


def extensions():
    if PURE_PYTHON:
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    # every ext/NAME.pyx becomes exchange.NAME; EXCHANGE_EXT=NAME,... limits a development build
    only = {name for name in os.environ.get("EXCHANGE_EXT", "").split(",") if name}
    modules = [
        Extension(
            f"exchange.{path.stem}",
            sources=[str(path)],
            extra_compile_args=["-O3", "-Wno-unused-function", "-Wno-unreachable-code"],
        )
        for path in sorted(Path("ext").glob("*.pyx"))
        if not only or path.stem in only
    ]
    return cythonize(
        modules,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": False,  # Python floor-division semantics for signed integers
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions())
