"""Build the C API test extensions once per session, against the installed header.

The extensions are compiled the way a C client of greenlet is: with
``#include "greenlet/greenlet.h"`` resolved against the header that the
greenlet under test installed.  The compiler is driven directly from
``sysconfig`` (no setuptools needed), into a session temporary directory.
"""

import importlib.machinery
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER_REL = os.path.join("greenlet", "greenlet.h")


def header_include_dirs():
    """Directories D, best first, that hold ``D/greenlet/greenlet.h`` for the installed greenlet.

    The package directory's parent comes first: that copy belongs to the
    greenlet that is imported.  The distribution-headers location
    (``<prefix>/include/site/pythonX.Y``, where pip puts ``headers=``) is next.
    """
    import greenlet

    package_dir = os.path.dirname(os.path.abspath(greenlet.__file__))
    version = "python%d.%d" % sys.version_info[:2]
    candidates = [
        os.path.dirname(package_dir),
        os.path.join(sys.prefix, "include", "site", version),
    ]
    found = []
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, HEADER_REL)) and directory not in found:
            found.append(directory)
    return found


def _source_tree_header():
    """``src/greenlet.h`` when greenlet is imported from a source checkout."""
    import greenlet

    package_dir = os.path.dirname(os.path.abspath(greenlet.__file__))
    path = os.path.join(os.path.dirname(package_dir), "src", "greenlet.h")
    return path if os.path.isfile(path) else None


def _include_dir_for(build_dir):
    found = header_include_dirs()
    if found:
        return found[0]
    source_header = _source_tree_header()
    if source_header is None:
        pytest.fail("greenlet/greenlet.h is not installed with the greenlet under test")
    # An in-place build: present src/greenlet.h under its installed name.
    include_dir = os.path.join(build_dir, "include")
    os.makedirs(os.path.join(include_dir, "greenlet"), exist_ok=True)
    shutil.copyfile(source_header, os.path.join(include_dir, HEADER_REL))
    return include_dir


def _config_words(name):
    return shlex.split(sysconfig.get_config_var(name) or "")


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(
            "%s failed (exit %d)\n$ %s\n%s%s"
            % (what, proc.returncode, shlex.join(cmd), proc.stdout, proc.stderr)
        )
    return proc


def compile_extension(name, c_source, build_dir, include_dirs, extra_cflags=()):
    """Compile and link one C file into ``build_dir/<name><EXT_SUFFIX>``; return its path."""
    obj = os.path.join(build_dir, name + ".o")
    target = os.path.join(build_dir, name + sysconfig.get_config_var("EXT_SUFFIX"))
    includes = ["-I" + d for d in include_dirs] + ["-I" + sysconfig.get_path("include")]
    compile_cmd = (
        _config_words("CC")
        + _config_words("CFLAGS")
        + _config_words("CCSHARED")
        # Speed over optimisation: these are test builds.
        + ["-O0", "-g0"]
        + list(extra_cflags)
        + includes
        + ["-c", c_source, "-o", obj]
    )
    _run(compile_cmd, "compiling " + name)
    link_cmd = _config_words("LDSHARED") + [obj, "-o", target]
    _run(link_cmd, "linking " + name)
    return target


def load_extension(name, path):
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


@pytest.fixture(scope="session")
def installed_headers():
    """Paths of every installed copy of greenlet/greenlet.h for the greenlet under test."""
    return [os.path.join(d, HEADER_REL) for d in header_include_dirs()]


@pytest.fixture(scope="session")
def capi_include_dir(tmp_path_factory):
    return _include_dir_for(str(tmp_path_factory.mktemp("greenlet_header")))


@pytest.fixture(scope="session")
def capi(tmp_path_factory, capi_include_dir):
    """The ``_test_capi`` extension, built against the installed greenlet.h."""
    build_dir = str(tmp_path_factory.mktemp("test_capi"))
    path = compile_extension(
        "_test_capi",
        os.path.join(HERE, "_test_capi.c"),
        build_dir,
        [capi_include_dir],
        extra_cflags=["-Wall", "-Werror=implicit-function-declaration"],
    )
    return load_extension("_test_capi", path)


def build_cython_extension(name, pyx_source, build_dir, include_dir):
    """Cythonize ``pyx_source`` as module ``name``, compile it, import it; return the module."""
    pyx = os.path.join(build_dir, name + ".pyx")
    shutil.copyfile(pyx_source, pyx)
    c_source = os.path.join(build_dir, name + ".c")
    _run(
        [sys.executable, "-m", "cython", "-3", "-o", c_source, pyx],
        "cythonizing " + os.path.basename(pyx_source),
    )
    path = compile_extension(name, c_source, build_dir, [include_dir])
    return load_extension(name, path)


@pytest.fixture(scope="session")
def cython_builder(tmp_path_factory, capi_include_dir):
    """``build(name, pyx_path) -> module``, for Cython sources compiled against greenlet.h."""
    pytest.importorskip("Cython")

    def build(name, pyx_source):
        build_dir = str(tmp_path_factory.mktemp(name))
        return build_cython_extension(name, pyx_source, build_dir, capi_include_dir)

    return build


@pytest.fixture(scope="session")
def cy_greenlet(cython_builder):
    """The Cython extension ``_cy_greenlet``: cdef classes subclassing greenlet."""
    return cython_builder("_cy_greenlet", os.path.join(HERE, "_cy_greenlet.pyx"))
