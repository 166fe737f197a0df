"""The package installs and runs outside the checkout.

The wheel is built from a copy of the project's packaging files (so the build leaves nothing in the checkout),
offline and without build isolation (the test environment's setuptools). Every directory of ``unlearn_core`` that
holds Python files must be a package (``__init__.py``) and be in the wheel — the wheel once lacked ``cli/``,
``curvature/``, ``privacy/`` and ``service/``, and ``import unlearn_core.pipeline`` failed on an installed copy.
The installed copy then runs the CLI from a directory outside the checkout, with nothing but the install on
``PYTHONPATH``, and must be the copy that is imported (an editable install must not shadow it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from timeouts import scaled

ROOT = Path(__file__).resolve().parents[1]
PACKAGING_FILES = ("pyproject.toml", "README.md", "LICENSE", "requirements.txt")


def _source_packages() -> list[str]:
    """Every directory under ``unlearn_core/`` that holds a ``.py`` file, as a dotted package name."""
    found = []
    for path in sorted((ROOT / "unlearn_core").rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        found.append(".".join(path.parent.relative_to(ROOT).parts))
    return sorted(set(found))


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1",
               UNLEARN_CACHE_DIR=str(tmp / "cache"), UNLEARN_DOWNLOAD="0")
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel built from a copy of the project, and the directory it was installed into (``--target``)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in PACKAGING_FILES:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "unlearn_core", src / "unlearn_core", ignore=shutil.ignore_patterns("__pycache__"))
    env = _clean_env(tmp)
    wheels = tmp / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(wheels), str(src)], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=scaled(120))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = wheels.glob("unlearn_explorer-*.whl")
    target = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], cwd=tmp, env=env, capture_output=True, text=True, timeout=scaled(120))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"tmp": tmp, "wheel": wheel, "target": target}


def test_every_sub_package_of_the_source_is_in_the_wheel(built) -> None:
    packages = _source_packages()
    # The sub-packages the issue names, at least (a walk that found nothing would pass vacuously).
    assert {"unlearn_core", "unlearn_core.cli", "unlearn_core.curvature", "unlearn_core.privacy",
            "unlearn_core.service", "unlearn_core.unlearners", "unlearn_core.playground"} <= set(packages)
    not_packages = [p for p in packages if not (ROOT / p.replace(".", "/") / "__init__.py").is_file()]
    assert not not_packages, f"directories with Python files but no __init__.py (left out of the wheel): " \
                             f"{not_packages}"
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    missing = [p for p in packages if f"{p.replace('.', '/')}/__init__.py" not in names]
    assert not missing, f"sub-packages missing from {built['wheel'].name}: {missing}"
    # Every source module, not just the __init__ files.
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "unlearn_core").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sources <= names, sorted(sources - names)[:5]
    # The runtime pins are the wheel's dependencies (one list: requirements.txt).
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [line for line in zipfile.ZipFile(built["wheel"]).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert "Requires-Dist: torch==2.14.1" in requires and len(requires) >= 10


@pytest.mark.slow
def test_the_installed_package_runs_the_cli_outside_the_checkout(built) -> None:
    tmp, target = built["tmp"], built["target"]
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {**_clean_env(tmp), "PYTHONPATH": str(target)}

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "unlearn_core", *argv], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=scaled(180))

    where = subprocess.run([sys.executable, "-c", "import unlearn_core.pipeline, unlearn_core; "
                            "print(unlearn_core.__file__)"], cwd=elsewhere, env=env, capture_output=True, text=True,
                           timeout=scaled(120))
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()).resolve().is_relative_to(target.resolve()), where.stdout
    methods = cli("methods")
    assert methods.returncode == 0, methods.stderr[-2000:]
    assert "certified_newton" in methods.stdout and "retrain" in methods.stdout
    out = elsewhere / "card.json"
    run = cli("run", "--dataset", "digits", "--model", "logreg", "--forget", "random:0.1", "--method", "retrain",
              "--json", str(out), "--quiet")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("verdict: Exact unlearning"), run.stdout[:300]
    card = json.loads(out.read_text())
    assert card["method"]["name"] == "retrain" and card["data"]["n_forget"] == 144
    assert card["distance"]["unlearned_to_retrained"] == 0.0


def test_the_dashboard_runs_from_outside_the_checkout(tmp_path, monkeypatch) -> None:
    """``streamlit run /path/to/app.py`` from another directory: Streamlit puts the script's folder first on
    ``sys.path`` (so ``dashboard/`` and the engine beside it are found) and the pages and the logo are resolved from
    ``app.py``'s folder, never from the working directory. AppTest runs the same script runner."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60)).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title and at.title[0].value
    assert not list(tmp_path.iterdir())
