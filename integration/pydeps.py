"""Third-party modules of the integration scripts, installed when missing.

The scripts import them as `dkim = pydeps.need("dkim")`, so that each one also runs on a
fresh machine when started alone. With Debian's /usr/bin/python3 (the one the scripts use:
Debian 12 refuses pip there, PEP 668) the Debian package is installed with apt-get, as root;
with another Python (pyenv, a venv) the PyPI package with pip. .ci/check-installs.sh fails on
a third-party import that does not go through need().
"""

import importlib
import os
import shutil
import subprocess
import sys

# module: (Debian package, PyPI package)
PACKAGES = {
    "authres": ("python3-authres", "authres"),
    "dkim": ("python3-dkim", "dkimpy"),
    "nacl": ("python3-nacl", "PyNaCl"),
    "prometheus_client": ("python3-prometheus-client", "prometheus-client"),
}


def _debian_python():
    return sys.prefix == sys.base_prefix == "/usr"


def _run(args, **kw):
    subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=900, check=False, **kw)


def need(module):
    """Imports `module`, installing its package first when the import fails."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    deb, pypi = PACKAGES[module]
    if _debian_python():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            sys.exit("no Python module %s: install the Debian package %s (as root)" % (module, deb))
        print("installing: %s (apt-get, for %s)" % (deb, sys.executable), file=sys.stderr, flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run(["apt-get", "update", "-qq"], env=env)
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", deb], env=env)
    else:
        print("installing: %s (pip, for %s)" % (pypi, sys.executable), file=sys.stderr, flush=True)
        _run([sys.executable, "-m", "pip", "install", "--quiet", pypi])
    importlib.invalidate_caches()
    return importlib.import_module(module)
