"""Build script: compiles ext/ into the extension module ``exchange._core``.

Set ``EXCHANGE_PUREPYTHON=1`` to skip the build; the package then runs its pure-Python reference.
A build that is wanted but fails is an error (no silent fallback).
"""
import os

from setuptools import setup

PURE_PYTHON = os.environ.get("EXCHANGE_PUREPYTHON", "") not in ("", "0")


def extensions():
    if PURE_PYTHON:
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    core = Extension(
        "exchange._core",
        sources=["ext/_core.pyx"],
        extra_compile_args=["-O3", "-Wno-unused-function", "-Wno-unreachable-code"],
    )
    return cythonize(
        [core],
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
