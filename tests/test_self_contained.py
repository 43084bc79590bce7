"""The repository tests itself from a fresh clone: the camera-file corpus is inside it (every file with its
source and licence), no test reads anything beside the clone, a project module is imported (an import
error fails) and a third-party peer a test drives is installed by the project's extras, never skipped."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "camera-files"
PROJECT_PACKAGES = ("rigs", "capture", "annotate", "train", "cinectrl")
# Optional at run time and not a Python package: the browser check needs Debian's chromium (scripts/
# install-system-deps.sh installs it), and the GPU-only checks need CUDA. Nothing else may skip on import.
SKIP_ALLOWED = {"selenium.webdriver": "selenium"}


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (REPO / folder).rglob("*.py")]


def test_every_corpus_file_is_in_the_repository_with_its_source_and_licence():
    readme = (CORPUS / "README.md").read_text()
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(files) == 161
    undocumented = [str(p.relative_to(CORPUS)) for p in files if f"`{p.name}`" not in readme]
    assert not undocumented, f"corpus files without a source in tests/data/camera-files/README.md: {undocumented}"
    assert "## Sources and licences" in readme


def test_no_test_or_benchmark_reads_beside_the_clone():
    offenders = []
    for path in _python_files("tests", "benchmarks"):
        text = path.read_text()
        for pattern in (r"parent\s*/\s*\"shared\"", r"\.\./shared", r"CINECTRL_SHARED_DATA", r"/work/shared"):
            if re.search(pattern, text) and path != Path(__file__):
                offenders.append(f"{path.relative_to(REPO)}: {pattern}")
    assert not offenders, offenders


def _importorskips(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                and node.args and isinstance(node.args[0], ast.Constant)):
            names.append(node.args[0].value)
    return names


def test_project_modules_are_imported_not_skipped():
    skipped = [(str(p.relative_to(REPO)), name) for p in _python_files("tests") for name in _importorskips(p)
               if name.split(".")[0] in PROJECT_PACKAGES]
    assert not skipped, f"a missing project module must fail, not skip: {skipped}"


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for group in project["optional-dependencies"].values() for r in group)]
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _third_party_imports(path: Path) -> set[str]:
    # the tests' own helper modules, wherever under tests/ they live (some are shared across folders)
    local = {p.stem for p in (REPO / "tests").rglob("*.py")} | set(PROJECT_PACKAGES) | {"tests", "benchmarks"}
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    names |= set(_importorskips(path))
    return {n for n in names if n.split(".")[0] not in local and n.split(".")[0] not in sys.stdlib_module_names}


def test_every_third_party_module_a_test_uses_is_declared_in_pyproject():
    """A peer a test drives (grbl-streamer, selenium, hypothesis ...) is installed by `pip install -e
    .[review,train,test]` (scripts/test.sh), so its test runs on a fresh machine instead of skipping."""
    declared = _declared()
    by_module = metadata.packages_distributions()
    missing = []
    for path in _python_files("tests"):
        for name in sorted(_third_party_imports(path)):
            top = name.split(".")[0]
            dists = {d.lower().replace("_", "-") for d in by_module.get(top, [SKIP_ALLOWED.get(name, top)])}
            if not dists & declared:
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert not missing, f"modules tests import that no dependency or extra installs: {missing}"
    assert "grbl-streamer" in declared
