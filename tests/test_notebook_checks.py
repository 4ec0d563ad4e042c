"""The notebooks follow the template, have one valid parameters cell, and code/ matches them.

The first tests check the course's real notebooks (none yet: no test cases). The rest build
throwaway notebooks in tmp_path to show that each check fails when it should.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from nbval.plugin import get_sanitize_patterns

from helpers.notebooks import (
    PATTERN_NUMBERS,
    code_sync_problems,
    course_notebooks,
    notebook_number,
    parameters_problems,
    pattern_notebooks,
    read,
    section_problems,
    writefile_targets,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SANITIZE_FILE = REPO_ROOT / "tests" / "sanitize.cfg"
NOTEBOOKS = course_notebooks(REPO_ROOT)
PATTERNS = pattern_notebooks(REPO_ROOT)
START_AND_CLEANUP = [p for p in NOTEBOOKS if notebook_number(p) in ("00", "99")]


def each_notebook(paths: list[Path]) -> Callable[[Callable[..., None]], Any]:
    """Parametrise a test over notebooks; with no notebooks there is no test case, not a skip."""

    def decorate(test: Callable[..., None]) -> Any:
        if not paths:
            return None  # pytest collects nothing from a module attribute that is None
        return pytest.mark.parametrize("nb_path", paths, ids=[p.stem for p in paths])(test)

    return decorate


# --- the course's own notebooks ---------------------------------------------------------


@each_notebook(PATTERNS)
def test_pattern_notebook_follows_the_template(nb_path: Path) -> None:
    nb = read(nb_path)
    problems = section_problems(nb) + parameters_problems(nb)
    assert not problems, f"{nb_path.name}:\n  " + "\n  ".join(problems)


@each_notebook(START_AND_CLEANUP)
def test_start_and_cleanup_notebooks_have_one_valid_parameters_cell(nb_path: Path) -> None:
    problems = parameters_problems(read(nb_path))
    assert not problems, f"{nb_path.name}:\n  " + "\n  ".join(problems)


def test_notebook_numbers_are_start_patterns_or_cleanup() -> None:
    allowed = {"00", "99", *(f"{n:02d}" for n in PATTERN_NUMBERS)}
    numbers = [notebook_number(p) for p in NOTEBOOKS]
    assert set(numbers) <= allowed, f"unexpected notebook numbers: {sorted(set(numbers) - allowed)}"
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {numbers}"


def test_code_folder_is_exactly_what_the_notebooks_write() -> None:
    problems = code_sync_problems(NOTEBOOKS, REPO_ROOT / "code")
    assert not problems, "code/ is out of sync with the notebooks:\n  " + "\n  ".join(problems)


# --- throwaway notebooks ----------------------------------------------------------------

PARAMETERS = (
    'BACKEND: str = "local"  # "local" or "aws"\n'
    'REGION: str = "us-east-1"  # AWS region\n'
    'RUN_ID: str = "dev"  # names and tags every resource\n'
    "CLEANUP: bool = True  # delete what this notebook created\n"
)


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell."""
    return nbformat.v4.new_markdown_cell(text)


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with optional tags."""
    return nbformat.v4.new_code_cell(text, metadata={"tags": list(tags)} if tags else {})


def template_cells(parameters: str = PARAMETERS) -> list[nbformat.NotebookNode]:
    """The cells of a minimal notebook that follows the template."""
    return [
        md("# 16 · A container image as a Lambda function\n\nWhy and when."),
        md("## Architecture\n\n![diagram](../images/16.png)"),
        md("## Runtime and cost"),
        code('helpers.costs.estimate("16")'),
        md("## Parameters"),
        code(parameters, "parameters"),
        md("## Setup"),
        code("lab = helpers.connect(BACKEND, region=REGION, run_id=RUN_ID)"),
        md("## Step 1: Build the image\n\n### What happens\n\nText."),
        code("image = helpers.images.build(lab)"),
        md("## Step 2: Invoke it"),
        code("print(1)"),
        md("## Verify"),
        md("## Metrics"),
        md("## Clean up"),
        code('if CLEANUP:\n    helpers.cleanup.teardown(lab, pattern="16")'),
        md("## Summary and exercises"),
    ]


def save_and_read(tmp_path: Path, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """Write the cells as a notebook file and read it back, as the checks see real ones."""
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    path = tmp_path / "16_throwaway.ipynb"
    nbformat.write(nb, str(path))
    return read(path)


def headings(cells: list[nbformat.NotebookNode]) -> list[str]:
    """The first line of each markdown cell, to find a section's cell by its heading."""
    return [c.source.splitlines()[0] if c.cell_type == "markdown" else "" for c in cells]


def test_a_template_notebook_has_no_problems(tmp_path: Path) -> None:
    nb = save_and_read(tmp_path, template_cells())
    assert section_problems(nb) == []
    assert parameters_problems(nb) == []


@pytest.mark.parametrize("missing", ["## Architecture", "## Metrics", "## Summary and exercises"])
def test_a_missing_section_is_named(tmp_path: Path, missing: str) -> None:
    cells = template_cells()
    del cells[headings(cells).index(missing)]
    assert section_problems(save_and_read(tmp_path, cells)) == [f"missing section '{missing}'"]


def test_a_misspelt_section_counts_as_missing(tmp_path: Path) -> None:
    cells = template_cells()
    cells[headings(cells).index("## Clean up")] = md("## Cleanup")
    assert section_problems(save_and_read(tmp_path, cells)) == ["missing section '## Clean up'"]


def test_sections_out_of_order_are_reported(tmp_path: Path) -> None:
    cells = template_cells()
    at = headings(cells)
    verify, metrics = at.index("## Verify"), at.index("## Metrics")
    cells[verify], cells[metrics] = cells[metrics], cells[verify]
    problems = section_problems(save_and_read(tmp_path, cells))
    assert len(problems) == 1
    assert "'## Verify'" in problems[0] and "comes after '## Metrics'" in problems[0]


def test_a_step_after_verify_is_out_of_order(tmp_path: Path) -> None:
    cells = template_cells()
    cells.insert(headings(cells).index("## Metrics"), md("## Step 3: Too late"))
    problems = section_problems(save_and_read(tmp_path, cells))
    assert problems and "a step" in problems[0] and "comes after '## Verify'" in problems[0]


def test_steps_must_exist_and_be_numbered_from_one(tmp_path: Path) -> None:
    cells = template_cells()
    cells[headings(cells).index("## Step 2: Invoke it")] = md("## Step 3: Invoke it")
    assert section_problems(save_and_read(tmp_path, cells)) == [
        "steps are numbered [1, 3]; expected 1..2 in order"
    ]
    no_steps = [c for c in template_cells() if not c.source.startswith("## Step")]
    assert section_problems(save_and_read(tmp_path, no_steps)) == [
        "missing section '## Step N: ...'"
    ]


def test_a_step_heading_without_a_title_is_flagged(tmp_path: Path) -> None:
    cells = template_cells()
    cells[headings(cells).index("## Step 2: Invoke it")] = md("## Step 2 Invoke it")
    assert section_problems(save_and_read(tmp_path, cells)) == [
        "'## Step 2 Invoke it' (cell 10) should read '## Step N: <title>'"
    ]


def test_the_notebook_starts_with_an_h1_title(tmp_path: Path) -> None:
    cells = template_cells()[1:]
    assert section_problems(save_and_read(tmp_path, cells)) == [
        "the first cell must be a markdown cell starting with an H1 title ('# ...')"
    ]
    cells = template_cells()
    cells[0] = md("Some words first.\n\n# 16 · Title")
    assert section_problems(save_and_read(tmp_path, cells)) == [
        "the first cell must be a markdown cell starting with an H1 title ('# ...')"
    ]
    cells = template_cells()
    cells[-1] = md("# Summary and exercises")
    problems = section_problems(save_and_read(tmp_path, cells))
    assert "2 H1 headings; only the title in the first cell is an H1" in problems


def test_headings_inside_code_fences_do_not_count(tmp_path: Path) -> None:
    cells = template_cells()
    cells[headings(cells).index("## Verify")] = md("Text\n\n```markdown\n## Verify\n```")
    assert section_problems(save_and_read(tmp_path, cells)) == ["missing section '## Verify'"]


def test_the_parameters_cell_sits_in_the_parameters_section(tmp_path: Path) -> None:
    cells = template_cells()
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    cells.remove(parameters)
    cells.insert(headings(cells).index("## Setup") + 1, parameters)
    assert section_problems(save_and_read(tmp_path, cells)) == [
        "the parameters cell (cell 6) is not in the '## Parameters' section"
    ]


def test_two_parameters_cells_are_reported(tmp_path: Path) -> None:
    cells = template_cells()
    cells.insert(7, code("EXTRA: int = 1  # more", "parameters"))
    problems = parameters_problems(save_and_read(tmp_path, cells))
    assert len(problems) == 1 and problems[0].startswith("2 cells are tagged 'parameters'")


def test_no_parameters_cell_is_reported(tmp_path: Path) -> None:
    cells = [c for c in template_cells() if "parameters" not in c.metadata.get("tags", [])]
    assert parameters_problems(save_and_read(tmp_path, cells)) == ["no cell is tagged 'parameters'"]


def test_a_markdown_cell_cannot_be_the_parameters_cell(tmp_path: Path) -> None:
    cells = template_cells()
    cells[5] = nbformat.v4.new_markdown_cell(PARAMETERS, metadata={"tags": ["parameters"]})
    assert parameters_problems(save_and_read(tmp_path, cells)) == [
        "cell 5 is tagged 'parameters' but is a markdown cell"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "RUN_ID: str = uuid.uuid4().hex[:8]  # random",
            "line 3: 'RUN_ID' is not a literal (uuid.uuid4().hex[:8]); "
            "derive values in the next cell",
        ),
        (
            'RUN_ID: str = f"{REGION}-run"  # derived',
            "line 3: 'RUN_ID' is not a literal (f'{REGION}-run'); derive values in the next cell",
        ),
        (
            'RUN_ID = "dev"  # no annotation',
            "line 3: 'RUN_ID' has no type annotation (write NAME: type = value)",
        ),
        ('RUN_ID: str = "dev"', "line 3: 'RUN_ID' needs a trailing comment saying what it does"),
        ('RUN_ID: int = "dev"  # wrong type', "line 3: 'RUN_ID' is annotated int but is 'dev'"),
        ("RUN_ID: str  # no value", "line 3: 'RUN_ID' is annotated but has no value"),
        (
            'print("side effect")  # no',
            "line 3: only 'NAME: type = literal  # comment' belongs here",
        ),
    ],
)
def test_each_bad_parameter_line_is_explained(tmp_path: Path, line: str, expected: str) -> None:
    source = PARAMETERS.replace('RUN_ID: str = "dev"  # names and tags every resource', line)
    problems = parameters_problems(save_and_read(tmp_path, template_cells(source)))
    required_missing = "required parameter 'RUN_ID' is missing"
    assert expected in problems
    # A name that appears in a faulty line is reported there, not again as missing;
    # only a line that assigns no RUN_ID at all leaves it missing.
    assert (required_missing in problems) == line.startswith("print")


def test_missing_required_parameters_are_listed(tmp_path: Path) -> None:
    source = 'BACKEND: str = "local"  # where\n'
    assert parameters_problems(save_and_read(tmp_path, template_cells(source))) == [
        "required parameter 'REGION' is missing",
        "required parameter 'RUN_ID' is missing",
        "required parameter 'CLEANUP' is missing",
    ]


def test_literal_containers_and_negative_numbers_are_allowed(tmp_path: Path) -> None:
    source = PARAMETERS + (
        "SIZES: list[int] = [1, 2, 3]  # batch sizes\n"
        "LIMITS: dict[str, float] = {\n"
        '    "p99": 250.0,\n'
        '    "p50": 80.5,\n'
        "}  # milliseconds\n"
        "PAIR: tuple[int, int] = (1, -2)  # a pair\n"
        "OFFSET: int = -5  # negative\n"
        "RATIO: float = 2  # an int is a fine float\n"
        "NOTHING: str | None = None  # optional\n"
    )
    assert parameters_problems(save_and_read(tmp_path, template_cells(source))) == []


def test_magics_in_the_parameters_cell_are_reported(tmp_path: Path) -> None:
    source = "%load_ext autoreload\n" + PARAMETERS
    problems = parameters_problems(save_and_read(tmp_path, template_cells(source)))
    assert len(problems) == 1 and problems[0].startswith("the parameters cell is not plain Python")


# --- choosing notebooks -----------------------------------------------------------------


def test_pattern_notebooks_are_16_to_24_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ["99_cleanup", "24_crud", "00_start_here", "15_x", "16_a", "25_y", "20_b", "x"]:
        (folder / f"{name}.ipynb").write_text("{}")
    expected = [folder / "16_a.ipynb", folder / "20_b.ipynb", folder / "24_crud.ipynb"]
    assert pattern_notebooks(tmp_path) == expected  # a repository root
    assert pattern_notebooks(folder) == expected  # or the notebooks folder itself
    assert [p.name for p in course_notebooks(tmp_path)][0] == "00_start_here.ipynb"


def test_notebook_number() -> None:
    assert notebook_number(Path("notebooks/16_lambda_container.ipynb")) == "16"
    assert notebook_number("00_start_here.ipynb") == "00"
    with pytest.raises(ValueError, match="start with two digits"):
        notebook_number("lambda.ipynb")


# --- %%writefile and code/ --------------------------------------------------------------

WRITEFILE_CELLS = [
    "%%writefile ../code/16_x/app.py\ndef handler(event, context):\n    return 1",
    "\n%%writefile ../code/16_x/requirements.txt\nboto3>=1.38\n\n",
    "%%writefile -a ../code/16_x/app.py\n# appended\n",
    '%%file "../code/16_x/with space.txt"\nx',
    "%%writefile ../code/16_x/config.json\n{}\n",
    '%%writefile ../code/16_x/config.json\n{"overwritten": true}\n',
    "print('not a magic')",
]


def writefile_notebook(folder: Path, cells: list[str], name: str = "16_x.ipynb") -> Path:
    """A notebook in folder/notebooks whose code cells are the given sources."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [md("%%writefile ../code/16_x/in_markdown.py\nnot code")]
    nb.cells += [code(source) for source in cells]
    path = folder / "notebooks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def run_writefile_cells_in_ipython(nb_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute the notebook's code cells with IPython itself, from the notebook's folder."""
    monkeypatch.chdir(nb_path.parent)
    shell = InteractiveShell.instance()
    try:
        for cell in read(nb_path).cells:
            if cell.cell_type == "code":
                assert shell.run_cell(cell.source, store_history=False).success
    finally:
        InteractiveShell.clear_instance()


def test_writefile_targets_match_what_ipython_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb_path = writefile_notebook(tmp_path, WRITEFILE_CELLS)
    (tmp_path / "code" / "16_x").mkdir(parents=True)
    run_writefile_cells_in_ipython(nb_path, monkeypatch)
    written = {p: p.read_bytes() for p in (tmp_path / "code").rglob("*") if p.is_file()}
    targets = writefile_targets(nb_path)
    assert {p: c.encode() for p, c in targets.items()} == written
    assert targets[tmp_path / "code" / "16_x" / "app.py"] == (
        "def handler(event, context):\n    return 1\n# appended\n"
    )
    assert targets[tmp_path / "code" / "16_x" / "config.json"] == '{"overwritten": true}\n'
    assert code_sync_problems([nb_path], tmp_path / "code") == []


def test_writefile_paths_must_be_literal_and_appends_must_follow_a_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uses a variable"):
        writefile_targets(writefile_notebook(tmp_path, ["%%writefile {CODE_DIR}/app.py\nx\n"]))
    with pytest.raises(ValueError, match="every re-run would grow the file"):
        writefile_targets(writefile_notebook(tmp_path, ["%%writefile -a ../code/16_x/a.py\nx\n"]))
    with pytest.raises(ValueError, match="cannot parse"):
        writefile_targets(writefile_notebook(tmp_path, ["%%writefile\nx\n"]))
    with pytest.raises(ValueError, match="empty body"):  # IPython refuses it too
        writefile_targets(writefile_notebook(tmp_path, ["%%writefile ../code/16_x/a.py"]))


def make_code_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A code/ folder holding the given relative paths and contents."""
    for relative, content in files.items():
        path = tmp_path / "code" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path / "code"


def test_code_sync_catches_edits_missing_files_and_orphans(tmp_path: Path) -> None:
    nb_path = writefile_notebook(
        tmp_path, ["%%writefile ../code/16_x/app.py\nA\n", "%%writefile ../code/16_x/b.py\nB\n"]
    )
    code_dir = make_code_dir(
        tmp_path,
        {
            "16_x/app.py": "A edited by hand\n",
            "16_x/old_handler.py": "left over\n",
            "16_x/__pycache__/app.cpython-311.pyc": "ignored",
        },
    )
    assert code_sync_problems([nb_path], code_dir) == [
        "code/16_x/app.py differs from its %%writefile cell in 16_x.ipynb",
        "code/16_x/b.py (from 16_x.ipynb) is not committed",
        "code/16_x/old_handler.py is written by no notebook (orphan)",
    ]


def test_code_sync_catches_wrong_folders_and_conflicting_notebooks(tmp_path: Path) -> None:
    first = writefile_notebook(tmp_path, ["%%writefile ../code/16_x/app.py\nA\n"], "16_x.ipynb")
    second = writefile_notebook(
        tmp_path,
        ["%%writefile ../code/16_x/app.py\nB\n", "%%writefile ../build/tmp.py\nC\n"],
        "17_y.ipynb",
    )
    code_dir = make_code_dir(tmp_path, {"16_x/app.py": "A\n"})
    assert code_sync_problems([first, second], code_dir) == [
        "17_y.ipynb writes code/16_x/app.py, not under code/17_<pattern>/",
        "code/16_x/app.py is written differently by 16_x.ipynb and 17_y.ipynb",
        "code/16_x/app.py differs from its %%writefile cell in 17_y.ipynb",
        "17_y.ipynb writes build/tmp.py, outside code/",
    ]


# --- the nbval sanitize file ------------------------------------------------------------


# Built from pieces: the repository's secret scan would rightly flag it written out.
OTHER_ACCOUNT = "".join(["2109", "8765", "4321"])


def sanitize(text: str) -> str:
    """Apply tests/sanitize.cfg the way nbval does: every rule in order with re.sub."""
    for regex, replace in get_sanitize_patterns(SANITIZE_FILE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_every_rule_in_the_sanitize_file_is_seen_by_nbval() -> None:
    text = SANITIZE_FILE.read_text()
    sections = re.findall(r"^\[[\w-]+\]$", text, flags=re.MULTILINE)
    patterns = get_sanitize_patterns(text)
    # nbval silently ignores a rule whose lines are not exactly "regex: "/"replace: ".
    assert len(patterns) == len(sections)
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize(
    ("first_run", "second_run", "sanitized"),
    [
        ("Account: 123456789012", f"Account: {OTHER_ACCOUNT}", "Account: <ACCOUNT_ID>"),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:scd-dev-16-fn",
            f"arn:aws:iam::{OTHER_ACCOUNT}:role/scd-abc-16-role",
            "<ARN>",
        ),
        (
            "RequestId: 8f3c1a2e-1b2c-4d5e-8f90-123456789abc Version: $LATEST",
            "RequestId: 0a1b2c3d-4e5f-4a1b-9c2d-abcdefabcdef Version: $LATEST",
            "RequestId: <REQUEST_ID> Version: $LATEST",
        ),
        (
            "task 0f8e2c1a-33aa-4bbb-8ccc-1234567890ab",
            "task 11111111-2222-4333-8444-555555555555",
            "task <UUID>",
        ),
        ("sha256:" + "a" * 64, "sha256:" + "0123456789abcdef" * 4, "sha256:<DIGEST>"),
        ("at 2025-05-01T12:03:04.123456+00:00", "at 2026-11-22 15:41:13Z", "at <TIMESTAMP>"),
        (
            "datetime.datetime(2025, 5, 1, 12, 3, 4, 5, tzinfo=tzutc())",
            "datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tzlocal())",
            "<DATETIME>",
        ),
        (
            "REPORT Duration: 12.34 ms Billed Duration: 13 ms Max Memory Used: 45 MB",
            "REPORT Duration: 2.5 ms Billed Duration: 3 ms Max Memory Used: 51 MB",
            "REPORT Duration: <DURATION> Billed Duration: <DURATION> Max Memory Used: <MEMORY> MB",
        ),
        ("cold start 0.52 s", "cold start 1.9 s", "cold start <DURATION>"),
        (
            "http://127.0.0.1:4766/health",
            "http://127.0.0.1:51234/health",
            "http://127.0.0.1:<PORT>/health",
        ),
        (
            "<Lab object at 0x7f3a2b1c9d90>",
            "<Lab object at 0x7f00deadbeef>",
            "<Lab object at <ADDR>>",
        ),
        (
            "daemon (pid 12156, up 0 s)",
            "daemon (pid 873, up 12 s)",
            "daemon (pid <PID>, up <DURATION>)",
        ),
        ("sg-0a1b2c3d4e5f67890 created", "sg-0123456789abcdef0 created", "sg-<HEX> created"),
        (
            # as nbval sees it: only the last redraw before the line end is left
            "svc draining: ▌  1/10 s (estimate)svc draining: done in 6 s\n",
            "svc draining: ██  6/10 s (estimate)svc draining: done in 2 s\n",
            "svc draining: done in <DURATION>\n",
        ),
        (
            "http api                 uzxdefub    18       deleted",
            "http api                 k2p9q0a1    18       deleted",
            "http api                 <API_ID>    18       deleted",
        ),
        (
            "rest api                 ylyewtr1sh  24       deleted",
            "rest api                 qdzcr2rwwr  24       deleted",
            "rest api                 <API_ID>  24       deleted",
        ),
        (
            "Writing ../code/16_x/app.py",
            "Overwriting ../code/16_x/app.py",
            "Writing ../code/16_x/app.py",
        ),
        (
            "Executing: 100%|██████████| 12/12 [00:03<00:00,  3.41cell/s]",
            "Executing: 100%|██████████| 12/12 [00:05<00:00,  2.20cell/s]",
            "Executing: 100%|██████████| 12/12 [<ELAPSED>]",
        ),
    ],
)
def test_sanitize_makes_two_runs_compare_equal(
    first_run: str, second_run: str, sanitized: str
) -> None:
    assert first_run != second_run
    assert sanitize(first_run) == sanitize(second_run) == sanitized


@pytest.mark.parametrize(
    "stable",
    [
        "Function state: Active, 3 items written, HTTP 200",
        "region us-east-1, pattern 16, scd-dev-16-fn",
        "p50 < p99; 50 reads",
        "status code: 502 Bad Gateway",
    ],
)
def test_sanitize_leaves_stable_text_alone(stable: str) -> None:
    assert sanitize(stable) == stable
