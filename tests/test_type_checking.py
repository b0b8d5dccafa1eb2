"""mypy follows only the aws-cdk-lib modules the code imports (pyproject.toml): every module a
checked source imports must be in that list, or mypy would take it as Any without a word."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

from tests.conftest import ROOT

MYPY = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def cdk_package() -> Path:
    spec = importlib.util.find_spec("aws_cdk")  # finds it without importing it (no jsii start-up)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def cdk_modules_imported(sources: list[Path], package: Path) -> dict[str, Path]:
    """Every aws_cdk module the sources import, with the first file importing it."""
    found: dict[str, Path] = {}
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "aws_cdk":  # `from aws_cdk import aws_iam as iam` imports a module
                    names += [f"aws_cdk.{a.name}" for a in node.names if (package / a.name).is_dir()]
            for name in names:
                if name == "aws_cdk" or name.startswith("aws_cdk."):
                    found.setdefault(name, source)
    return found


def sources() -> list[Path]:
    paths = [ROOT / name for name in MYPY["files"]]
    return [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*.py")))]


def test_every_cdk_module_the_code_imports_is_followed_by_mypy() -> None:
    overrides = MYPY["overrides"]
    skipped = [o for o in overrides if o.get("follow_imports") == "skip"]
    followed = {m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"]}
    assert [o["module"] for o in skipped] == [["aws_cdk.*"]]
    imported = cdk_modules_imported(sources(), cdk_package())
    assert len(imported) > 20, "the scan must see the app's imports"
    missing = {module: str(where.relative_to(ROOT)) for module, where in imported.items() if module not in followed}
    assert missing == {}, "add these to the followed aws_cdk modules in pyproject.toml"


def test_the_scan_sees_a_module_imported_either_way(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "from aws_cdk import Duration, aws_sqs as sqs\n"
        "import aws_cdk.aws_ec2\n"
        "from aws_cdk.aws_rds import DatabaseInstance\n"
        "from . import aws_glue\n"  # relative: not aws-cdk-lib's
    )
    found = cdk_modules_imported([source], cdk_package())
    assert set(found) == {"aws_cdk", "aws_cdk.aws_sqs", "aws_cdk.aws_ec2", "aws_cdk.aws_rds"}
