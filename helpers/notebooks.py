"""Static checks of course notebooks: template sections, parameters cell, %%writefile targets.

Nothing here executes a notebook; the runner and the tests share these functions.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import shlex
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import nbformat

PATTERN_NUMBERS = range(16, 25)
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
PARAMETERS_TAG = "parameters"
AWS_ONLY_TAG = "aws-only"
REQUIRED_PARAMETERS = ("BACKEND", "REGION", "RUN_ID", "CLEANUP")
STEP_SECTION = "Step N: ..."
# The H2 headings of the template, in order; the steps sit between Setup and Verify.
TEMPLATE_SECTIONS = (
    "Architecture",
    "Runtime and cost",
    "Parameters",
    "Setup",
    STEP_SECTION,
    "Verify",
    "Metrics",
    "Clean up",
    "Summary and exercises",
)

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_STEP = re.compile(r"^Step (\d+): \S")
_LOOSE_STEP = re.compile(r"^step\b", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d\d)_")
_CACHE_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"}
_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
}


@dataclass(frozen=True)
class Parameter:
    """One assignment of a parameters cell, as written."""

    name: str
    annotation: str
    default: Any
    line: int


def read(path: Path) -> nbformat.NotebookNode:
    """Read a notebook file as nbformat v4."""
    # Imported here, not at the top: importing nbformat's schema validator takes about a
    # second, and every notebook's kernel imports this module (helpers.catalog walks them all).
    import nbformat

    return nbformat.read(str(path), as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook file."""
    import nbformat  # see read()

    nbformat.write(nb, str(path))


def notebook_number(path: Path | str) -> str:
    """The two-digit number a notebook's file name starts with ("16" for 16_lambda.ipynb)."""
    match = _NUMBERED.match(Path(path).name)
    if not match:
        raise ValueError(f"{Path(path).name}: notebook names start with two digits and '_'")
    return match.group(1)


def course_notebooks(root: Path) -> list[Path]:
    """All numbered notebooks (00..99) of a repository root or notebooks folder, in order."""
    folder = root / "notebooks" if (root / "notebooks").is_dir() else root
    return sorted(folder.glob(NOTEBOOK_GLOB))


def pattern_notebooks(root: Path) -> list[Path]:
    """The pattern notebooks (16..24) of a repository root or notebooks folder, in order."""
    return [p for p in course_notebooks(root) if int(notebook_number(p)) in PATTERN_NUMBERS]


def _source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (raw JSON stores it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell: Mapping[str, Any]) -> list[str]:
    """A cell's metadata tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def _headings(markdown: str) -> list[tuple[int, str]]:
    """(level, text) of the ATX headings in markdown, ignoring fenced code blocks."""
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for line in markdown.splitlines():
        opening = _FENCE.match(line)
        if opening:
            marker = opening.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None and (match := _HEADING.match(line)):
            found.append((len(match.group(1)), " ".join(match.group(2).split())))
    return found


def section_problems(nb: Mapping[str, Any]) -> list[str]:
    """What is missing or out of order in a pattern notebook's template headings."""
    cells = nb.get("cells", [])
    problems: list[str] = []
    first = cells[0] if cells else {}
    first_line = next((x for x in _source(first).splitlines() if x.strip()), "")
    title = _HEADING.match(first_line) if first.get("cell_type") == "markdown" else None
    if not title or len(title.group(1)) != 1:
        problems.append(
            "the first cell must be a markdown cell starting with an H1 title ('# ...')"
        )

    h1_count = 0
    sections: list[tuple[str, int]] = []  # (template section, cell index)
    steps: list[int] = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for level, text in _headings(_source(cell)):
            h1_count += level == 1
            if level != 2:
                continue
            if step := _STEP.match(text):
                steps.append(int(step.group(1)))
                sections.append((STEP_SECTION, index))
            elif text in TEMPLATE_SECTIONS:
                sections.append((text, index))
            elif _LOOSE_STEP.match(text):
                problems.append(f"'## {text}' (cell {index}) should read '## Step N: <title>'")
    if h1_count > 1:
        problems.append(f"{h1_count} H1 headings; only the title in the first cell is an H1")

    for name in TEMPLATE_SECTIONS:
        count = sum(section == name for section, _ in sections)
        label = "## Step N: ..." if name == STEP_SECTION else f"## {name}"
        if count == 0:
            problems.append(f"missing section '{label}'")
        elif count > 1 and name != STEP_SECTION:
            problems.append(f"section '{label}' appears {count} times")

    highest = -1
    for section, index in sections:
        rank = TEMPLATE_SECTIONS.index(section)
        if rank < highest:
            label = "a step" if section == STEP_SECTION else f"'## {section}'"
            after = TEMPLATE_SECTIONS[highest]
            problems.append(
                f"{label} (cell {index}) comes after '## {after}'; "
                f"expected order: {', '.join(TEMPLATE_SECTIONS)}"
            )
        highest = max(highest, rank)

    if steps and steps != list(range(1, len(steps) + 1)):
        problems.append(f"steps are numbered {steps}; expected 1..{len(steps)} in order")

    problems.extend(_parameters_placement(cells, sections))
    return problems


def _parameters_placement(
    cells: list[Mapping[str, Any]], sections: list[tuple[str, int]]
) -> list[str]:
    """A problem if the parameters cell is not inside the '## Parameters' section."""
    tagged = [i for i, cell in enumerate(cells) if PARAMETERS_TAG in _tags(cell)]
    starts = [index for name, index in sections if name == "Parameters"]
    if len(tagged) != 1 or len(starts) != 1:
        return []  # missing pieces are reported on their own
    following = [index for _, index in sections if index > starts[0]]
    end = following[0] if following else len(cells)
    if starts[0] < tagged[0] < end:
        return []
    return [f"the parameters cell (cell {tagged[0]}) is not in the '## Parameters' section"]


def _parameters_cells(nb: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, cell) of every cell tagged 'parameters'."""
    return [(i, c) for i, c in enumerate(nb.get("cells", [])) if PARAMETERS_TAG in _tags(c)]


def _comment_lines(source: str) -> set[int]:
    """Line numbers that carry a comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT}


def _check_statement(stmt: ast.stmt, commented: set[int]) -> tuple[Parameter | None, list[str]]:
    """Parse one statement of a parameters cell into a Parameter, or say what is wrong."""
    where = f"line {stmt.lineno}"
    if isinstance(stmt, ast.Assign):
        names = ", ".join(ast.unparse(t) for t in stmt.targets)
        return None, [f"{where}: '{names}' has no type annotation (write NAME: type = value)"]
    if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
        return None, [f"{where}: only 'NAME: type = literal  # comment' belongs here"]
    name = stmt.target.id
    if stmt.value is None:
        return None, [f"{where}: '{name}' is annotated but has no value"]
    try:
        value = ast.literal_eval(stmt.value)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None, [
            f"{where}: '{name}' is not a literal ({ast.unparse(stmt.value)}); "
            "derive values in the next cell"
        ]
    problems: list[str] = []
    annotation = ast.unparse(stmt.annotation)
    expected = _SIMPLE_TYPES.get(annotation)
    # bool is an int subclass, so an int or float annotation must not accept True/False.
    wrong_bool = isinstance(value, bool) and annotation in ("int", "float")
    if expected and (not isinstance(value, expected) or wrong_bool):
        problems.append(f"{where}: '{name}' is annotated {annotation} but is {value!r}")
    if not commented.intersection(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)):
        problems.append(f"{where}: '{name}' needs a trailing comment saying what it does")
    return Parameter(name, annotation, value, stmt.lineno), problems


def _parse_parameters(source: str) -> tuple[list[Parameter], list[str]]:
    """The parameters a cell's source declares, and what is wrong with it."""
    try:
        tree = ast.parse(source)
        commented = _comment_lines(source)
    except SyntaxError as exc:  # magics (%, !) and typos end up here
        return [], [f"the parameters cell is not plain Python: {exc.msg} (line {exc.lineno})"]
    parameters: list[Parameter] = []
    problems: list[str] = []
    for stmt in tree.body:
        parameter, found = _check_statement(stmt, commented)
        problems.extend(found)
        if parameter:
            parameters.append(parameter)
    return parameters, problems


def _assigned_names(source: str) -> set[str]:
    """Every simple name a cell assigns, valid parameter or not."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return set()
    targets = [t for s in body if isinstance(s, ast.Assign) for t in s.targets]
    targets += [s.target for s in body if isinstance(s, ast.AnnAssign)]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def declared_parameters(nb: Mapping[str, Any]) -> dict[str, Parameter]:
    """The valid assignments of the first parameters cell, by name (empty if there is none)."""
    cells = _parameters_cells(nb)
    if not cells:
        return {}
    parameters, _ = _parse_parameters(_source(cells[0][1]))
    return {p.name: p for p in parameters}


def parameters_problems(
    nb: Mapping[str, Any], required: tuple[str, ...] = REQUIRED_PARAMETERS
) -> list[str]:
    """What is wrong with a notebook's parameters cell (empty if it follows the template)."""
    cells = _parameters_cells(nb)
    if not cells:
        return ["no cell is tagged 'parameters'"]
    if len(cells) > 1:
        indexes = ", ".join(str(i) for i, _ in cells)
        return [
            f"{len(cells)} cells are tagged 'parameters' (cells {indexes}); papermill "
            "injects after the first one only, so keep exactly one"
        ]
    index, cell = cells[0]
    if cell.get("cell_type") != "code":
        return [f"cell {index} is tagged 'parameters' but is a {cell.get('cell_type')} cell"]
    source = _source(cell)
    if not source.strip():
        return ["the parameters cell is empty"]
    parameters, problems = _parse_parameters(source)
    if problems and problems[0].startswith("the parameters cell is not plain Python"):
        return problems
    names = [p.name for p in parameters]
    problems.extend(
        f"'{n}' is assigned more than once" for n in sorted(set(names)) if names.count(n) > 1
    )
    # A name assigned in a faulty statement is reported there, not again as missing.
    assigned = set(names) | _assigned_names(source)
    problems.extend(f"required parameter '{n}' is missing" for n in required if n not in assigned)
    return problems


class _MagicArguments(argparse.ArgumentParser):
    """An argument parser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        """Turn a parse error into a ValueError."""
        raise ValueError(message)


def _writefile_args(line: str) -> argparse.Namespace:
    """Parse a %%writefile magic line the way IPython does (-a/--append, one filename)."""
    parser = _MagicArguments(prog="%%writefile", add_help=False)
    parser.add_argument("-a", "--append", action="store_true")
    parser.add_argument("filename")
    try:
        return parser.parse_args(shlex.split(line))
    except ValueError as exc:
        raise ValueError(f"cannot parse '%%writefile {line}': {exc}") from exc


def writefile_targets(nb_path: Path) -> dict[Path, str]:
    """Final content of every file the notebook's %%writefile cells write, by absolute path."""
    folder = Path(nb_path).resolve().parent
    targets: dict[Path, str] = {}
    for index, cell in enumerate(read(nb_path).cells):
        if cell.cell_type != "code":
            continue
        # IPython drops leading blank lines and ends the cell with a newline before
        # splitting off the magic line; the rest is written verbatim.
        lines = _source(cell).splitlines(keepends=True)
        while lines and lines[0].isspace():
            lines.pop(0)
        if not lines:
            continue
        magic, _, line = lines[0].strip().partition(" ")
        if magic not in ("%%writefile", "%%file"):
            continue
        body = "".join(lines[1:])
        if not body:
            raise ValueError(f"{nb_path} cell {index}: %%writefile with an empty body fails")
        if not body.endswith("\n"):
            body += "\n"
        args = _writefile_args(line.strip())
        if "$" in args.filename or "{" in args.filename:
            raise ValueError(
                f"{nb_path} cell {index}: '{args.filename}' uses a variable; "
                "write literal paths so code/ can be checked"
            )
        target = Path(os.path.normpath(folder / os.path.expanduser(args.filename)))
        if args.append and target not in targets:
            raise ValueError(
                f"{nb_path} cell {index}: appends to {args.filename} before writing "
                "it, so every re-run would grow the file"
            )
        targets[target] = targets[target] + body if args.append else body
    return targets


def without_aws_only_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the notebook whose aws-only code cells are raw cells, which nothing executes."""
    import nbformat  # see read()

    copy = nbformat.from_dict(nb)
    for i, cell in enumerate(copy.cells):
        if cell.cell_type == "code" and AWS_ONLY_TAG in _tags(cell):
            copy.cells[i] = nbformat.v4.new_raw_cell(cell.source, metadata=cell.metadata)
    return copy


def _code_files(code_dir: Path) -> set[Path]:
    """The files in code/'s pattern folders, without caches that running the code leaves."""
    if not code_dir.is_dir():
        return set()
    return {  # files directly in code/ (its README) belong to no pattern
        Path(os.path.normpath(p.resolve()))
        for p in code_dir.glob("*/**/*")
        if p.is_file() and not set(p.parts) & _CACHE_PARTS and p.suffix != ".pyc"
    }


def code_sync_problems(notebooks: list[Path], code_dir: Path) -> list[str]:
    """How code/ differs from what the notebooks' %%writefile cells write (empty if in sync)."""
    code_dir = Path(os.path.normpath(code_dir.resolve()))
    problems: list[str] = []
    written: dict[Path, tuple[str, str]] = {}  # target -> (content, notebook name)
    for nb_path in notebooks:
        try:
            targets = writefile_targets(nb_path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        prefix = f"{notebook_number(nb_path)}_"
        for target, content in targets.items():
            shown = os.path.relpath(target, code_dir.parent)
            if not target.is_relative_to(code_dir):
                problems.append(f"{nb_path.name} writes {shown}, outside {code_dir.name}/")
                continue
            if not target.relative_to(code_dir).parts[0].startswith(prefix):
                problems.append(f"{nb_path.name} writes {shown}, not under code/{prefix}<pattern>/")
            if target in written and written[target][0] != content:
                problems.append(
                    f"{shown} is written differently by {written[target][1]} and {nb_path.name}"
                )
            written[target] = (content, nb_path.name)
            if not target.is_file():
                problems.append(f"{shown} (from {nb_path.name}) is not committed")
            elif target.read_bytes() != content.encode("utf-8"):
                problems.append(f"{shown} differs from its %%writefile cell in {nb_path.name}")
    for orphan in sorted(_code_files(code_dir) - written.keys()):
        shown = os.path.relpath(orphan, code_dir.parent)
        problems.append(f"{shown} is written by no notebook (orphan)")
    return problems


# Patterns whose notebooks are still to come, for the course map until their notebook exists.
# What each notebook shows a student, for the course map.
YOU_WILL_SEE = {
    "00": "how the course works, pre-flight checks, a first round trip",
    "16": "image build and push, cold vs warm starts",
    "17": "task lifecycle, exit codes, logs",
    "18": "health checks, routing, latency",
    "19": "SQL over HTTPS, capacity (ACUs) over time",
    "20": "connection pooling under a burst",
    "21": "event source mappings, batching, retries",
    "22": "secrets injected into a container",
    "23": "hit ratio and latency with and without a cache",
    "24": "a query-executor Lambda behind two APIs",
    "99": "teardown of a run, or of every run",
}
_RUNTIME_LINE = re.compile(r"^- \*\*(local|aws)\*\*: (.*)$")
_REUSES = re.compile(r"pattern (\d\d)'s")


@dataclass(frozen=True)
class MapEntry:
    """One notebook of the course map: what it builds, how long it takes, what it reuses."""

    number: str
    title: str
    file: str
    local: str
    aws: str
    reuses: tuple[str, ...]


def map_entry(path: Path) -> MapEntry:
    """A notebook's line of the course map, read from its title and 'Runtime and cost'."""
    # Plain JSON: notebook 00 draws the map, and nbformat's validator is slow to import.
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
    title_line = next((x for x in _source(cells[0]).splitlines() if x.strip()), "") if cells else ""
    title = title_line.lstrip("# ").split("·", 1)[-1].strip()
    runtime = next((_source(c) for c in cells if _source(c).startswith("## Runtime")), "")
    times = {"local": "", "aws": ""}
    for line in runtime.splitlines():
        if match := _RUNTIME_LINE.match(line.strip()):
            # The first clause: "about 5 minutes (most of it ...)" -> "about 5 minutes"
            times[match.group(1)] = re.split(r"[(:;.,]", match.group(2))[0].strip()
    reuses = tuple(sorted(set(_REUSES.findall(runtime)) - {notebook_number(path)}))
    return MapEntry(notebook_number(path), title, path.name, times["local"], times["aws"], reuses)


def course_map(folder: Path | str = ".") -> Any:
    """The course's notebooks as a Markdown table with links (notebook 00 shows it).

    Read from the notebooks themselves (title, 'Runtime and cost', the patterns whose
    resources it reuses), so the map follows the course as notebooks are added.
    """
    from IPython.display import Markdown

    entries = {e.number: e for e in map(map_entry, course_notebooks(Path(folder)))}
    lines = [
        "| notebook | what it builds | you will see | local | aws | reuses |",
        "|---|---|---|---|---|---|",
    ]
    for number in sorted(entries):
        entry = entries[number]
        what = f"[{entry.title}]({entry.file})"
        reuses = ", ".join(f"pattern {n}'s, when it is there" for n in entry.reuses)
        seen = YOU_WILL_SEE.get(number, "")
        lines.append(f"| {number} | {what} | {seen} | {entry.local} | {entry.aws} | {reuses} |")
    return Markdown("\n".join(lines))
