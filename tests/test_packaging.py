"""Packaging: the sdist ships everything a compiled build needs (and no generated C), its metadata carries
the PEP 639 licence, and setup.py refuses to produce a package without its compiled core.

Fast (no compiler, no network): the sdist is built without isolation from a copy of the source tree.
The full check, a wheel compiled from the sdist and installed into a fresh venv, is scripts/check_sdist.sh
(run by .ci/run).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SDIST_PREFIX = "exchange-0.1.0/"

# build artefacts and caches of the working tree; generated exchange/**/*.c are deliberately copied (they must
# not ship)
_IGNORE_ANYWHERE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.so", "*.egg-info", ".hypothesis", ".benchmarks", ".pytest_cache",
)
_IGNORE_AT_ROOT = {".git", "build", "dist", "wheelhouse", ".venv"}


def _IGNORE(directory, names):
    ignored = set(_IGNORE_ANYWHERE(directory, names))
    if Path(directory).resolve() == ROOT:
        ignored |= _IGNORE_AT_ROOT & set(names)
    return ignored


def _tooling_missing():
    """Why the sdist cannot be built here (None if it can): needs `build` and setuptools>=77 (PEP 639)."""
    # distribution metadata, not ``import build``: a build/ directory in the working tree imports as a
    # namespace package
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("build")
        setuptools_version = version("setuptools")
    except PackageNotFoundError as exc:
        return f"{exc.name} is not installed"
    if int(setuptools_version.split(".")[0]) < 77:
        return f"setuptools {setuptools_version} < 77 cannot read PEP 639 licence metadata"
    return None


def _require_tooling():
    reason = _tooling_missing()
    if reason is None:
        return
    message = f"{reason}; install the test extra: pip install -e '.[test]'"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs the test extra: missing tooling there is a real failure
    pytest.skip(message)


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("EXCHANGE_PUREPYTHON", "EXCHANGE_EXT")}
    env.update(extra)
    return env


def _load_setup_module():
    """setup.py as a module: its ``setup()`` call is guarded by ``__name__ == "__main__"``."""
    spec = importlib.util.spec_from_file_location("exchange_setup_under_test", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(names in the tarball, PKG-INFO text) of an sdist built from a copy of the working tree."""
    _require_tooling()
    base = tmp_path_factory.mktemp("sdist")
    tree = base / "src"
    shutil.copytree(ROOT, tree, ignore=_IGNORE)
    # generated files lying in the tree must be left out even when present
    (tree / "exchange" / "orders" / "_stale_generated.c").write_text("/* generated */\n")
    (tree / "exchange" / "_stale.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    out = base / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(out), str(tree)],
        cwd=base, capture_output=True, text=True, timeout=120, env=_clean_env(),  # cwd: not the repo's build/
    )
    assert proc.returncode == 0, f"sdist build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    tarballs = list(out.glob("exchange-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    with tarfile.open(tarballs[0]) as tar:
        names = {name.removeprefix(SDIST_PREFIX) for name in tar.getnames()}
        pkg_info = tar.extractfile(SDIST_PREFIX + "PKG-INFO").read().decode()
    return names, pkg_info


def _repo_files(pattern):
    return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if "__pycache__" not in p.parts)


def test_sdist_ships_extension_sources(sdist):
    names, _ = sdist
    headers = _repo_files("exchange/**/*.h")
    assert headers, "no exchange/**/*.h in the repository?"
    wanted = ["exchange/orders/_matching.pyx", "exchange/clearing/_sweep.pyx", *headers,
              *_repo_files("exchange/**/*.pxd"), *_repo_files("exchange/**/*.pyx")]
    missing = [name for name in wanted if name not in names]
    assert not missing, f"sdist lacks extension sources: {missing}"


def test_sdist_ships_tests_docs_and_licence(sdist):
    names, _ = sdist
    wanted = ["LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in", "exchange/__init__.py",
              "tests/conftest.py", "tests/test_packaging.py"]
    wanted += _repo_files("tests/**/*.py") + _repo_files("docs/*")
    assert any(name.startswith("tests/scenarios/") for name in wanted)
    assert any(name.startswith("docs/") for name in wanted)
    missing = [name for name in wanted if name not in names]
    assert not missing, f"sdist lacks: {missing}"


def test_sdist_ships_no_generated_files(sdist):
    names, _ = sdist
    generated = sorted(n for n in names if n.endswith((".c", ".cpp", ".so", ".pyd", ".o", ".pyc", ".html")))
    assert not generated, f"generated files in the sdist: {generated}"


def test_sdist_licence_metadata(sdist):
    _, pkg_info = sdist
    headers = pkg_info.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: MIT" in headers
    assert "License-File: LICENSE" in headers
    assert not any(line.startswith("License: ") for line in headers), "legacy License: field alongside PEP 639"


def test_licence_file():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the exchange authors" in text


# ---- setup.py: a build that should compile and cannot fails loudly ---------------------------------------


def test_discovery_finds_the_compiled_core():
    setup_module = _load_setup_module()
    modules = setup_module.discover_extensions(ROOT)
    assert {ext.name for ext in modules} >= {"exchange.orders._matching", "exchange.clearing._sweep"}
    for ext in modules:
        folder = ext.name.rpartition(".")[0].replace(".", "/")
        assert ext.sources == [ext.name.replace(".", "/") + ".pyx"]  # the .pyx beside its reference, never a stale .c
        assert set(_repo_files(f"{folder}/*.h")) <= set(ext.depends)
        assert ext.include_dirs == [folder]
    assert "exchange/orders/core_int.h" in next(e for e in modules if e.name == "exchange.orders._matching").depends


def test_discovery_fails_without_pyx(tmp_path):
    setup_module = _load_setup_module()
    (tmp_path / "exchange" / "orders").mkdir(parents=True)
    (tmp_path / "exchange" / "orders" / "core_int.h").write_text("/* header only */\n")
    (tmp_path / "exchange" / "orders" / "_matching.c").write_text("/* a stale generated file must not be used instead */\n")
    with pytest.raises(setup_module.ExtensionBuildError, match=r"no Cython sources \(\*\.pyx\) found"):
        setup_module.discover_extensions(tmp_path)
    with pytest.raises(setup_module.ExtensionBuildError, match="no Cython sources"):
        setup_module.discover_extensions(tmp_path / "does-not-exist")


def test_discovery_fails_when_a_required_module_is_missing(tmp_path):
    setup_module = _load_setup_module()
    (tmp_path / "exchange" / "orders").mkdir(parents=True)
    (tmp_path / "exchange" / "orders" / "_matching.pyx").write_text("")
    with pytest.raises(setup_module.ExtensionBuildError, match=r"exchange/clearing/_sweep\.pyx"):
        setup_module.discover_extensions(tmp_path)


def test_exchange_ext_naming_an_unknown_module_fails():
    setup_module = _load_setup_module()
    assert [e.name for e in setup_module.discover_extensions(ROOT, ["_matching"])] == ["exchange.orders._matching"]
    assert [e.name for e in setup_module.discover_extensions(ROOT, ["exchange.clearing._sweep"])] == ["exchange.clearing._sweep"]
    with pytest.raises(setup_module.ExtensionBuildError, match="EXCHANGE_EXT names _nope"):
        setup_module.discover_extensions(ROOT, ["_nope"])


def test_missing_cython_fails_loudly(monkeypatch):
    setup_module = _load_setup_module()
    modules = setup_module.discover_extensions(ROOT)
    monkeypatch.setitem(sys.modules, "Cython", None)  # import Cython / Cython.Build now raises ImportError
    monkeypatch.setitem(sys.modules, "Cython.Build", None)
    with pytest.raises(setup_module.ExtensionBuildError, match="Cython is required"):
        setup_module.cythonize_in_place(modules)


def test_pure_python_install_skips_the_build(monkeypatch):
    setup_module = _load_setup_module()
    monkeypatch.delenv("EXCHANGE_EXT", raising=False)
    monkeypatch.setenv("EXCHANGE_PUREPYTHON", "1")
    assert setup_module.extensions() == []
    monkeypatch.setenv("EXCHANGE_PUREPYTHON", "0")
    assert setup_module.extensions()


def test_the_build_runs_one_job_per_usable_cpu_unless_told(monkeypatch):
    """Cythonizing and compiling in parallel: one job per CPU this process may use, ``EXCHANGE_BUILD_JOBS`` (a
    positive integer, else a clear error) or ``build_ext -j N`` instead."""
    from setuptools import Distribution

    setup_module = _load_setup_module()
    monkeypatch.delenv("EXCHANGE_BUILD_JOBS", raising=False)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert setup_module.jobs() == usable
    monkeypatch.setenv("EXCHANGE_BUILD_JOBS", "3")
    assert setup_module.jobs() == 3
    for bad in ("0", "-2", "two", "1.5", " 2", "²"):
        monkeypatch.setenv("EXCHANGE_BUILD_JOBS", bad)
        with pytest.raises(setup_module.ExtensionBuildError, match="EXCHANGE_BUILD_JOBS must be a positive integer"):
            setup_module.jobs()
    monkeypatch.setenv("EXCHANGE_BUILD_JOBS", "5")
    command = setup_module.build_ext(Distribution({"ext_modules": []}))
    command.initialize_options()
    command.finalize_options()
    assert command.parallel == 5
    told = setup_module.build_ext(Distribution({"ext_modules": []}))
    told.initialize_options()
    told.parallel = 1  # build_ext -j 1
    told.finalize_options()
    assert told.parallel == 1


def test_setup_py_exits_non_zero_without_pyx(tmp_path):
    """The real entry point, as pip/build run it: no .pyx and EXCHANGE_PUREPYTHON unset is an error."""
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "exchange", tree / "exchange", ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "*.so", "*.pyx", "*.c"))  # the headers stay, the .pyx (and stale .c) do not
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tree, capture_output=True, text=True, timeout=60, env=_clean_env(),
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "no Cython sources (*.pyx) found" in proc.stderr, proc.stderr
    assert "EXCHANGE_PUREPYTHON=1" in proc.stderr
    assert not list((tree / "exchange").rglob("*.so"))
