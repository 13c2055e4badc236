"""Build script: compiles every exchange/**/NAME.pyx into the extension module named by its package path
(``exchange/orders/_matching.pyx`` -> ``exchange.orders._matching``, ``exchange/clearing/_sweep.pyx`` ->
``exchange.clearing._sweep``): each compiled twin lives beside its pure-Python reference, with its headers.

Set ``EXCHANGE_PUREPYTHON=1`` to skip the build; the package then runs its pure-Python reference.
A build that is wanted but cannot happen is an error, never a silent pure-Python package:
no exchange/**/*.pyx found (or one of the required modules missing), Cython missing, or a compiler error.

The .pyx sources and headers ship in the sdist (MANIFEST.in); the generated .c files do not:
a wheel is always built from the .pyx with the Cython pinned in pyproject.toml's [build-system].
Cython runs in ``build_ext`` only, so ``sdist``/``egg_info`` need neither Cython nor a compiler.
``EXCHANGE_EXT=NAME,...`` limits a development build to some modules (``_matching`` or
``exchange.orders._matching``). The modules are cythonized and compiled in parallel, one job per usable CPU
(``EXCHANGE_BUILD_JOBS=N`` sets the number).
"""
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.errors import SetupError

HERE = Path(__file__).resolve().parent
REQUIRED = ("exchange.orders._matching", "exchange.clearing._sweep", "exchange.accounts._pretrade", "exchange.clearing._fills",
            "exchange.orders._entry", "exchange.liquidation.adl._bounds", "exchange.boundary._batch",
            "exchange.boundary._validate", "exchange._engine",
            "exchange.liquidation._monitor", "exchange.accounts._positions",
            "exchange.liquidation._waterfall", "exchange._records", "exchange._handlers",
            "exchange.funding._settle")  # the package cannot run without them (exchange/_impl.py)
COMPILE_ARGS = ["-O3", "-Wno-unused-function", "-Wno-unreachable-code"]
CYTHON_DIRECTIVES = {
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": False,  # Python floor-division semantics for signed integers
    "embedsignature": True,
}
PURE_HINT = "Set EXCHANGE_PUREPYTHON=1 to install the pure-Python reference without the compiled core."


class ExtensionBuildError(SetupError):
    """The compiled core was wanted but cannot be built (setuptools prints it as ``error: ...``)."""


def pure_python(environ=os.environ) -> bool:
    return environ.get("EXCHANGE_PUREPYTHON", "") not in ("", "0")


def discover_extensions(root=HERE, only=None):
    """One Extension per ``root/exchange/**/NAME.pyx``, named by its package path (``exchange.orders._matching``).

    Raises ExtensionBuildError if exchange/ holds no .pyx, if a required module is missing, or if ``only``
    (EXCHANGE_EXT) names a module that has no .pyx (a name is the module's last part or its dotted name).
    Source paths are relative to ``root`` (setuptools wants relative paths; the build runs with ``root`` as
    its working directory); each module's include directory is its own folder, and the headers (.h, .pxd)
    there are its dependencies.
    """
    root = Path(root).resolve()
    package_dir = root / "exchange"
    pyx = sorted(package_dir.rglob("*.pyx"))
    if not pyx:
        raise ExtensionBuildError(
            f"no Cython sources (*.pyx) found in {package_dir}: cannot build the compiled core "
            f"({', '.join(REQUIRED)}). An sdist must ship exchange/**/*.pyx and their *.h "
            f"(see MANIFEST.in). {PURE_HINT}"
        )
    names = {".".join(path.relative_to(root).with_suffix("").parts): path for path in pyx}
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise ExtensionBuildError(
            f"missing Cython sources in {package_dir}: "
            f"{', '.join(name.replace('.', '/') + '.pyx' for name in missing)}. {PURE_HINT}"
        )
    only = set(only or ())
    known = set(names) | {name.rpartition(".")[2] for name in names}
    unknown = sorted(only - known)
    if unknown:
        raise ExtensionBuildError(
            f"EXCHANGE_EXT names {', '.join(unknown)}, which has no .pyx in {package_dir} "
            f"(have: {', '.join(sorted(names))})"
        )
    modules = []
    for name, path in names.items():
        if only and name not in only and name.rpartition(".")[2] not in only:
            continue
        source = path.relative_to(root).as_posix()
        folder = path.parent
        headers = [h.relative_to(root).as_posix() for h in sorted(folder.glob("*.h")) + sorted(folder.glob("*.pxd"))]
        ext = Extension(
            name,
            sources=[source],
            include_dirs=[folder.relative_to(root).as_posix()],
            depends=headers,  # rebuild when a header changes; also puts them in the sdist
            extra_compile_args=list(COMPILE_ARGS),
        )
        # setuptools rewrites .pyx sources to a (possibly stale or absent) .c when it cannot import
        # Cython at this point; keep the .pyx: build_ext below cythonizes it or fails loudly.
        ext.sources = [source]
        modules.append(ext)
    return modules


def cythonize_in_place(extensions):
    """Cythonize ``extensions`` (replacing each one's .pyx sources by the generated .c), or fail loudly."""
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise ExtensionBuildError(
            f"Cython is required to build the compiled core ({', '.join(REQUIRED)}) "
            f"but cannot be imported ({exc}). Build with `pip install .` / `python -m build`, which install "
            f"the Cython listed in pyproject.toml, or `pip install 'cython>=3.0'` first. {PURE_HINT}"
        ) from exc
    if not any(source.endswith(".pyx") for ext in extensions for source in ext.sources):
        return
    generated = {
        ext.name: ext
        for ext in cythonize(extensions, language_level=3, compiler_directives=CYTHON_DIRECTIVES, nthreads=jobs())
    }
    for ext in extensions:
        ext.sources = generated[ext.name].sources


def jobs() -> int:
    """How many modules to cythonize and compile at once: the CPUs this process may use (``EXCHANGE_BUILD_JOBS``
    overrides; 1 builds one at a time)."""
    wanted = os.environ.get("EXCHANGE_BUILD_JOBS", "")
    if wanted:
        if not (wanted.isascii() and wanted.isdigit() and int(wanted) >= 1):
            raise ExtensionBuildError(f"EXCHANGE_BUILD_JOBS must be a positive integer, got {wanted!r}")
        return int(wanted)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class build_ext(_build_ext):
    """Cythonizes at build time (not when setup.py is merely read, e.g. for ``sdist``), cythonizes and compiles
    the modules in parallel (:func:`jobs`), and refuses to produce a package without its extensions."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # (``-j N`` on the command line wins)
            self.parallel = jobs()

    def run(self):
        if not pure_python():
            if not self.extensions:
                raise ExtensionBuildError(f"no extension modules to build. {PURE_HINT}")
            cythonize_in_place(self.extensions)
        super().run()


def extensions():
    if pure_python():
        return []
    only = [name for name in os.environ.get("EXCHANGE_EXT", "").split(",") if name]
    return discover_extensions(HERE, only)


if __name__ == "__main__":  # also true when run by the PEP 517 backend (setuptools.build_meta)
    try:
        ext_modules = extensions()
    except ExtensionBuildError as exc:
        sys.exit(f"error: {exc}")
    setup(ext_modules=ext_modules, cmdclass={"build_ext": build_ext})
