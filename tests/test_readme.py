"""The commands the README and the docs pages show work as written: every CDK flag is one the pinned
CLI's `--help` lists for that command, every `python -m local_deploy` command and flag is one its
parser has, every `python -m` module exists, every config file named exists or is the copy the
README tells you to make, and every relative link between the pages leads to a file."""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import jsii
import pytest

from stacks import JSII_NODE_NOTICES_SILENCED
from stacks.config import config_path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docs" / "github-actions-deploy.yml"]
README_LINES = 200  # a newcomer reads it in five minutes; everything else is a docs page


def cdk_commands(markdown: str) -> list[list[str]]:
    """Each `npx cdk ...` command, in code blocks (continued lines joined) and inline code alike."""
    text = markdown.replace("\\\n", " ")
    found = re.findall(r"npx (?:--no-install )?cdk [^`\n#<]*", text)
    return [shlex.split(command.replace("--no-install ", "")) for command in found]


COMMANDS = cdk_commands(README)
DOCUMENTED = [words for document in DOCUMENTS for words in cdk_commands(document.read_text(encoding="utf-8"))]


@cache
def cli_help(command: str) -> str:
    result = subprocess.run(
        ["npx", "--no-install", "cdk", command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout + result.stderr


def test_the_readme_has_the_commands_a_deploy_needs() -> None:
    assert {words[2] for words in COMMANDS} >= {"bootstrap", "diff", "deploy", "destroy", "synth"}


@pytest.mark.parametrize("words", DOCUMENTED, ids=[" ".join(words[2:4]) for words in DOCUMENTED])
def test_every_flag_is_one_the_pinned_cli_has(words: list[str]) -> None:
    command, flags = words[2], [word.split("=", 1)[0] for word in words[3:] if word.startswith("-")]
    shown = cli_help(command)
    assert shown.startswith("cdk "), shown[:200]  # a command's help (`ls` shows `cdk list`'s)
    for written in flags:
        flag = re.sub(r"^--no-", "--", written)  # yargs turns off a boolean --x with --no-x
        assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,]|$)", shown, re.MULTILINE), f"cdk {command} {written}"


def test_a_flag_the_pinned_cli_lacks_is_caught() -> None:
    """The check above can fail: `cdk diff` has no --all (it diffs every stack when given none)."""
    assert not re.search(r"(^|[\s,])--all([\s,]|$)", cli_help("diff"), re.MULTILINE)
    assert re.search(r"(^|[\s,])--all([\s,]|$)", cli_help("deploy"), re.MULTILINE)


def test_every_config_file_named_exists_or_is_the_copy_the_readme_makes() -> None:
    copies = set(re.findall(r"cp config/example\.toml (\S+)", README))
    named = {word.split("=", 1)[1] for words in COMMANDS for word in words if word.startswith("config=")}
    assert named
    for name in named:
        resolved = config_path(ROOT / name) if "/" in name else config_path(name)
        made = {str(Path(copy)) for copy in copies} | {Path(copy).name for copy in copies}
        assert (ROOT / resolved).exists() or name in made, name


def jsii_node_support() -> dict[int, datetime.date]:
    """The last day jsii supports each Node.js release, from the installed jsii runtime's own table
    (end of life plus its extended-support months, unless the table names a date)."""
    runtime = (Path(jsii.__file__).parent / "_embedded" / "jsii" / "bin__jsii-runtime.js").read_text()
    months = int(re.search(r"DEFAULT_EXTENDED_SUPPORT_MONTHS=(\d+)", runtime).group(1))  # type: ignore[union-attr]
    support = {}
    for major, end_of_life, end_of_support in re.findall(
        r'new NodeRelease\((\d+),\{endOfLife:new Date\("([\d-]+)"\)(?:,endOfJsiiSupport:new Date\("([\d-]+)"\))?',
        runtime,
    ):
        if end_of_support:
            support[int(major)] = datetime.date.fromisoformat(end_of_support)
        else:
            end = datetime.date.fromisoformat(end_of_life)
            month = end.month - 1 + months
            support[int(major)] = end.replace(year=end.year + month // 12, month=month % 12 + 1)
    return support


def test_the_node_releases_the_readme_calls_supported_are_the_ones_jsii_supports() -> None:
    claimed = re.search(r"Python 3\.11 or newer and Node\.js (\d+) or (\d+)", README)
    assert claimed, "the Quick start names the supported Node.js releases"
    support = jsii_node_support()
    assert support[20] < datetime.date.today() <= min(support[int(major)] for major in claimed.groups())
    silenced = JSII_NODE_NOTICES_SILENCED["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"]
    assert f"end-of-life banner for Node.js {silenced}, and for no other release" in README.replace("\n", " ")


def test_the_readme_stays_short_and_links_every_docs_page() -> None:
    assert len(README.splitlines()) < README_LINES
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in README, f"the README's documentation table lacks docs/{page.name}"


def code_text(markdown: str) -> str:
    """Code blocks and inline code, continued lines joined: where commands are shown."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", markdown, re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL))
    return "\n".join([*blocks, *inline]).replace("\\\n", " ")


def local_deploy_commands() -> list[tuple[str, list[str]]]:
    found = []
    for document in DOCUMENTS:
        for line in code_text(document.read_text(encoding="utf-8")).splitlines():
            for match in re.finditer(r"python -m local_deploy ([^#|;&]*)", line):
                words = shlex.split(match.group(1).replace("[", " ").replace("]", " "))
                found.append((document.name, words))
    return found


LOCAL_COMMANDS = local_deploy_commands()


@pytest.mark.parametrize(
    "words", [w for _, w in LOCAL_COMMANDS], ids=[f"{d}:{' '.join(w[:2])}" for d, w in LOCAL_COMMANDS]
)
def test_every_local_deploy_command_and_flag_is_one_its_parser_has(words: list[str]) -> None:
    from local_deploy.cli import _parser

    parser = _parser()
    if not words or words[0].startswith("-"):
        known = {flag for action in parser._actions for flag in action.option_strings}
        assert all(word.split("=")[0] in known for word in words if word.startswith("-")), words
        return
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert words[0] in commands, f"python -m local_deploy {words[0]}: no such command"
    known = {flag for action in commands[words[0]]._actions for flag in action.option_strings}
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"python -m local_deploy {words[0]} {word}: no such flag"


def test_every_module_the_docs_run_exists() -> None:
    modules = {
        module
        for document in DOCUMENTS
        for module in re.findall(r"python -m ([a-z_][a-z_.]*)", code_text(document.read_text(encoding="utf-8")))
        if module not in ("pytest", "pip", "venv", "cProfile", "compileall")
    }
    assert "local_deploy" in modules
    for module in modules:
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), f"python -m {module}"


def test_every_relative_link_between_the_pages_leads_to_a_file() -> None:
    for document in DOCUMENTS:
        if document.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (document.parent / target).exists(), f"{document.name}: link to {target}"
