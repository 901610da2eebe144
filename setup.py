"""Build the C extension ``greenlet._greenlet`` from ``src/``.

Metadata lives in pyproject.toml; this file only does what static metadata
cannot: the version (read from ``greenlet/__init__.py``), the extension with
compiler flags probed at build time, and the public header ``greenlet.h``,
which is installed twice, like upstream greenlet:

* inside the package, as ``greenlet/greenlet.h`` (copied from ``src/`` at
  build time, so there is a single source of truth), and
* as a distribution header (``<prefix>/include/site/pythonX.Y/greenlet/``),
  so ``#include "greenlet/greenlet.h"`` works for C clients such as gevent.

Environment variables for special builds:

* ``GREENLET_CFLAGS``: extra compiler flags, appended last (e.g.
  ``"-O0 -g -fsanitize=address"``). Any ``-fsanitize=`` flag in it is also
  passed to the linker.
* ``GREENLET_LDFLAGS``: extra linker flags.
"""

import glob
import os
import re
import shlex
import tempfile

from setuptools import Extension
from setuptools import find_packages
from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC_HEADER = os.path.join("src", "greenlet.h")


def read_version():
    with open(os.path.join(HERE, "greenlet", "__init__.py"), encoding="utf-8") as f:
        match = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", f.read(), re.M)
    if not match:
        raise RuntimeError("cannot find __version__ in greenlet/__init__.py")
    return match.group(1)


def rel_glob(pattern):
    # setuptools wants paths relative to setup.py, with forward slashes.
    return sorted(
        os.path.relpath(p, HERE).replace(os.sep, "/")
        for p in glob.glob(os.path.join(HERE, pattern))
    )


BASE_CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-fno-strict-aliasing"]
# Probed: only added when the compiler accepts them.
# CET shadow stacks (-fcf-protection) cannot follow a stack switch done by
# copying stack slices, so the protection must be off for this extension.
# -fvisibility=hidden: only the module init function (PyMODINIT_FUNC marks
# it) is exported, so calls between our own files do not go through the PLT;
# C clients reach the C API through the capsule, never through symbols.
OPTIONAL_CFLAGS = ["-fcf-protection=none", "-fvisibility=hidden"]


def env_flags(name):
    return shlex.split(os.environ.get(name, ""))


class BuildExt(build_ext):
    """build_ext that adds the compiler flags the compiler accepts."""

    def build_extensions(self):
        accepted = [f for f in OPTIONAL_CFLAGS if self._compiler_accepts(f)]
        extra_cflags = env_flags("GREENLET_CFLAGS")
        extra_ldflags = env_flags("GREENLET_LDFLAGS")
        extra_ldflags += [f for f in extra_cflags if f.startswith("-fsanitize")]
        for ext in self.extensions:
            ext.extra_compile_args = BASE_CFLAGS + accepted + extra_cflags
            ext.extra_link_args = list(ext.extra_link_args or []) + extra_ldflags
        self._force_rebuild_if_flags_changed(extra_cflags + ["--"] + extra_ldflags)
        super().build_extensions()

    def _force_rebuild_if_flags_changed(self, flags):
        # An in-tree build directory survives between pip runs; without this,
        # switching GREENLET_CFLAGS (say, to a sanitizer build) would silently
        # reuse the objects built with the old flags.
        stamp = os.path.join(self.build_temp, "greenlet-extra-flags.txt")
        wanted = shlex.join(flags)
        try:
            with open(stamp, encoding="utf-8") as f:
                previous = f.read()
        except OSError:
            previous = None
        if previous != wanted:
            self.force = True
            self.mkpath(self.build_temp)
            with open(stamp, "w", encoding="utf-8") as f:
                f.write(wanted)

    def _compiler_accepts(self, flag):
        if self.compiler.compiler_type != "unix":
            return False
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w", encoding="utf-8") as f:
                f.write("int main(void) { return 0; }\n")
            try:
                # -Werror: clang only warns about some flags it does not know.
                self.compiler.compile(
                    [source], output_dir=tmp, extra_postargs=[flag, "-Werror"]
                )
            except Exception:  # CompileError; its module differs across setuptools
                return False
        return True


class BuildPy(build_py):
    """build_py that also places src/greenlet.h into the package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # Editable installs import the package from the source tree.
            self.copy_file(PUBLIC_HEADER, os.path.join("greenlet", "greenlet.h"))
        else:
            self.mkpath(os.path.join(self.build_lib, "greenlet"))
            self.copy_file(PUBLIC_HEADER, self._header_target())

    def _header_target(self):
        return os.path.join(self.build_lib, "greenlet", "greenlet.h")

    def get_outputs(self, *args, **kwargs):
        outputs = list(super().get_outputs(*args, **kwargs))
        if not getattr(self, "editable_mode", False):
            target = self._header_target()
            if target not in outputs:
                outputs.append(target)
        return outputs


SOURCES = rel_glob("src/*.c")
HEADERS = rel_glob("src/*.h") + rel_glob("src/platform/*.h")

setup(
    version=read_version(),
    packages=find_packages(
        where=HERE, include=["greenlet", "greentrace", "greentrace.*"]
    ),
    package_data={
        "greenlet": ["py.typed", "*.pyi", "greenlet.h"],
        "greentrace": ["py.typed", "*.pyi"],
    },
    headers=[PUBLIC_HEADER],
    ext_modules=[
        Extension(
            name="greenlet._greenlet",
            sources=SOURCES,
            include_dirs=["src"],
            depends=HEADERS,
        )
    ],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
    zip_safe=False,
)
