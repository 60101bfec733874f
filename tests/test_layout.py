"""The packages that must work without Django: cosmos (model facts) and standin (the stand-in program).

import-linter (make lint) forbids the imports by name; this imports every module with Django, the
apps and the project's site really absent, as on a GPU node or in a script.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib, pkgutil, sys

BLOCKED = {blocked!r}

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (absent in this test)")
        return None

sys.meta_path.insert(0, Absent())
package = importlib.import_module({package!r})
names = [
    info.name for info in pkgutil.walk_packages(package.__path__, {package!r} + ".")
    if not info.name.endswith(".__main__")  # runs the program
]
for name in names:
    importlib.import_module(name)
print(len(names))
"""

BLOCKED = (
    "django",
    "channels",
    "celery",
    "paramiko",
    "cosmos_site",
    "nodes",
    "inputs",
    "prompts",
    "webhooks",
    "runs",
)


@pytest.mark.parametrize(
    ("package", "blocked"),
    [("cosmos", BLOCKED), ("standin", (*BLOCKED, "cosmos"))],
)
def test_it_imports_every_module_of_the_pure_packages_without_django(package, blocked):
    script = IMPORT_ALL.format(package=package, blocked=set(blocked))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 5  # every module was walked, not an empty package
