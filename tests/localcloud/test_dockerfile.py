"""Dockerfiles for the process runtime: parsing, substitution, pip lines, refusals, COPY plans."""

from __future__ import annotations

import io
import tarfile
import textwrap

import pytest

from localcloud.images.context import DockerIgnore, context_files, copy_plan
from localcloud.images.dockerfile import (
    Copy,
    DockerfileError,
    ImagePath,
    MakeDir,
    PipInstall,
    base_image,
    parse,
    split_instructions,
)
from localcloud.images.words import process_word, split_words

LAMBDA = "FROM public.ecr.aws/lambda/python:3.12\n"


def recipe(body: str, base: str = LAMBDA):
    return parse(base + textwrap.dedent(body))


def refused(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as error:
        parse(textwrap.dedent(text))
    return error.value


# --- instructions and words -------------------------------------------------------------


def test_continuations_comments_and_directives():
    text = textwrap.dedent(
        """\
        # syntax=docker/dockerfile:1
        # a comment
        FROM python:3.12-slim

        RUN pip install \\
            # a comment inside the continuation is dropped
            simplejson \\

            requests
        cmd ["python", "app.py"]
        """
    )
    instructions = split_instructions(text)
    assert [(i.line, i.keyword) for i in instructions] == [(3, "FROM"), (5, "RUN"), (10, "CMD")]
    assert instructions[1].text.split() == ["pip", "install", "simplejson", "requests"]
    assert instructions[1].source == "RUN pip install simplejson requests"


def test_words_quotes_escapes_and_substitution():
    env = {"A": "1", "EMPTY": "", "ROOT": "/var/task"}
    assert split_words("a 'b c' \"d e\" f\\ g") == ["a", "'b c'", '"d e"', "f\\ g"]
    assert process_word("'$A'", env) == "$A"
    assert process_word('"$A and ${A}"', env) == "1 and 1"
    assert process_word("\\$A", env) == "$A"
    assert process_word("${ROOT}/lib:$UNSET", env) == "/var/task/lib:"
    assert process_word("${UNSET:-fallback}", env) == "fallback"
    assert process_word("${EMPTY:-fallback} [${EMPTY-unused}] ${UNSET-kept}", env) == (
        "fallback [] kept"
    )
    assert process_word("${A:+set}${UNSET:+set}", env) == "set"
    assert process_word("${UNSET:-${A}}", env) == "1"


def test_env_both_forms_and_substitution_of_earlier_values():
    r = recipe(
        """\
        ENV A=1 B="two words" C=${LAMBDA_TASK_ROOT}/lib
        ENV LEGACY value with  spaces $A
        ENV A=2 D=$A
        """
    )
    assert r.env["B"] == "two words"
    assert r.env["C"] == "/var/task/lib"
    assert r.env["LEGACY"] == "value with  spaces 1"
    assert r.env["A"] == "2" and r.env["D"] == "1"  # same-line references see the old value
    assert r.env["LAMBDA_TASK_ROOT"] == "/var/task"  # the base image's env is kept


def test_arg_defaults_global_args_and_env_precedence():
    r = parse(
        textwrap.dedent(
            """\
            ARG PY=3.11
            FROM python:${PY}-slim
            ARG PY
            ARG APP_DIR=/srv/app
            ARG NO_DEFAULT
            ENV WHERE=$APP_DIR PY_SEEN=$PY NOTHING=x${NO_DEFAULT}x
            ARG WHERE=ignored
            ENV AGAIN=$WHERE
            """
        )
    )
    assert r.base.ref == "python:3.11-slim" and r.base.python_version == "3.11"
    assert r.env["WHERE"] == "/srv/app"
    assert r.env["PY_SEEN"] == "3.11"
    assert r.env["NOTHING"] == "xx"
    assert r.env["AGAIN"] == "/srv/app"  # ENV wins over an ARG of the same name
    assert "APP_DIR" not in r.env  # ARG values are not part of the image


def test_base_images():
    lam = base_image("public.ecr.aws/lambda/python:3.12")
    assert (lam.lambda_base, lam.python_version, lam.workdir) == (True, "3.12", "/var/task")
    assert lam.entrypoint == ["/lambda-entrypoint.sh"] and lam.cmd == []
    assert lam.env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert base_image("amazon/aws-lambda-python:3.11").python_version == "3.11"
    assert base_image("public.ecr.aws/lambda/python:3.13-x86_64").python_version == "3.13"
    assert base_image("public.ecr.aws/lambda/python:latest").python_version is None
    assert base_image("public.ecr.aws/lambda/provided:al2023").python_version is None
    assert base_image("python:3.12-slim").lambda_base is False
    assert base_image("python:3.12-slim").workdir == "/"
    assert base_image("debian:12").python_version is None


def test_lambda_base_without_entrypoint_keeps_the_lambda_entrypoint():
    r = recipe('CMD [ "app.handler" ]\n')
    assert r.entrypoint == ["/lambda-entrypoint.sh"] and r.cmd == ["app.handler"]
    assert r.workdir == "/var/task"


def test_cmd_and_entrypoint_json_and_shell_forms():
    r = recipe(
        """\
        ENTRYPOINT ["python", "-m", "awslambdaric"]
        CMD app.handler
        """
    )
    assert r.entrypoint == ["python", "-m", "awslambdaric"]
    assert r.cmd == ["/bin/sh", "-c", "app.handler"]
    assert recipe("CMD [not json\n").cmd == ["/bin/sh", "-c", "[not json"]
    shell = recipe('SHELL ["/bin/bash", "-lc"]\nCMD echo hi\n')
    assert shell.cmd == ["/bin/bash", "-lc", "echo hi"]


def test_a_new_entrypoint_drops_the_inherited_cmd():
    r = parse('FROM python:3.12\nENTRYPOINT ["python", "app.py"]\n')
    assert r.cmd == []
    kept = parse('FROM python:3.12\nCMD ["--port", "80"]\nENTRYPOINT ["python", "app.py"]\n')
    assert kept.cmd == ["--port", "80"]


def test_workdir_is_relative_to_the_previous_one_and_makes_the_directory():
    r = parse("FROM python:3.12\nWORKDIR /srv\nWORKDIR app\nENV H=/h\nWORKDIR $H/x\n")
    assert r.workdir == "/h/x"
    assert [s.path for s in r.steps if isinstance(s, MakeDir)] == ["/srv", "/srv/app", "/h/x"]


def test_copy_destinations():
    r = recipe(
        """\
        COPY app.py ${LAMBDA_TASK_ROOT}
        COPY a.txt b.txt ./
        COPY ["with space.txt", "/opt/data/"]
        COPY --chmod=755 run.sh /usr/local/bin/run
        ADD lib lib/
        """
    )
    copies = [s for s in r.steps if isinstance(s, Copy)]
    assert [c.dest for c in copies] == [
        "/var/task", "/var/task/", "/opt/data/", "/usr/local/bin/run", "/var/task/lib/",
    ]  # fmt: skip
    assert copies[1].sources == ("a.txt", "b.txt")
    assert copies[2].sources == ("with space.txt",)
    assert copies[3].chmod == 0o755
    assert copies[4].keyword == "ADD"


REQS = ImagePath("/var/task/requirements.txt")


@pytest.mark.parametrize(
    ("line", "args", "target"),
    [
        ("pip install -r requirements.txt", ("--requirement", REQS), None),
        ("pip3 install --no-cache-dir simplejson", ("--no-cache-dir", "simplejson"), None),
        ("python -m pip install -rrequirements.txt", ("--requirement", REQS), None),
        ("python3.12 -m pip install -U 'simplejson>=3'", ("-U", "simplejson>=3"), None),
        (
            'pip install -r requirements.txt -t "$LAMBDA_TASK_ROOT"',
            ("--requirement", REQS),
            "/var/task",
        ),
        ("pip install -t vendor simplejson", ("simplejson",), "/var/task/vendor"),
        ("pip install --target=/opt/python ./pkg", (ImagePath("/var/task/pkg"),), "/opt/python"),
        (
            "pip install -e . --index-url https://example.org/simple",
            ("--editable", ImagePath("/var/task"), "--index-url", "https://example.org/simple"),
            None,
        ),
    ],
)
def test_pip_install_forms(line, args, target):
    steps = recipe(f"RUN {line}\n").steps
    assert len(steps) == 1 and isinstance(steps[0], PipInstall)
    assert steps[0].args == args
    assert steps[0].target == target
    assert steps[0].workdir == "/var/task"


def test_pip_exec_form_chains_and_ignored_commands():
    r = recipe(
        """\
        RUN ["pip", "install", "simplejson"]
        RUN pip install --upgrade pip && pip install -r requirements.txt ; rm -rf /root/.cache/pip
        RUN pip cache purge && mkdir -p /opt/data logs && echo done
        RUN --mount=type=cache,target=/root/.cache/pip pip install simplejson
        """
    )
    pips = [s for s in r.steps if isinstance(s, PipInstall)]
    assert [p.args for p in pips] == [
        ("simplejson",),
        ("--requirement", ImagePath("/var/task/requirements.txt")),
        ("simplejson",),
    ]
    assert [s.path for s in r.steps if isinstance(s, MakeDir)] == ["/opt/data", "/var/task/logs"]
    notes = "\n".join(r.notes)
    assert "`pip` skipped" in notes and "nothing left to install" in notes
    assert "rm -rf /root/.cache/pip` ignored" in notes and "pip cache purge` ignored" in notes
    assert "--mount=type=cache" in notes


def test_metadata_instructions_are_noted_or_recorded():
    r = recipe('EXPOSE 8080\nUSER nobody\nLABEL team=data version="1 0"\nHEALTHCHECK NONE\n')
    assert r.labels == {"team": "data", "version": "1 0"}
    assert [n.split(":")[0] for n in r.notes] == ["line 2", "line 3", "line 5"]
    assert "EXPOSE 8080 ignored" in r.notes[0]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("FROM python:3.12\n\nRUN apt-get update && \\\n  apt-get install -y curl\n", 3,
         ["RUN apt-get update && apt-get install -y curl", "operating-system packages"]),
        ("FROM python:3.12\nRUN yum install -y gcc\n", 2, ["yum", "operating-system"]),
        ("FROM python:3.12\nRUN curl -O https://x/y\n", 2, ["`curl`", "only `pip install`"]),
        ("FROM scratch\n", 1, ["an empty image has no Python"]),
        ("FROM python:3.12 AS build\nFROM python:3.12\n", 2, ["multi-stage"]),
        ("FROM python:3.12\nCOPY --from=build /app /app\n", 2, ["COPY --from", "multi-stage"]),
        ("FROM python:3.12\nADD https://example.org/x.tgz /x\n", 2, ["download it"]),
        ("FROM python:3.12\nRUN pip install x > log.txt\n", 2, ["'>'"]),
        ("FROM python:3.12\nRUN pip install --user x\n", 2, ["--user"]),
        ("FROM python:3.12\nRUN pip uninstall -y x\n", 2, ["pip uninstall"]),
        ("FROM python:3.12\nRUN <<EOF\npip install x\nEOF\n", 2, ["heredocs"]),
        ("FROM python:3.12\nFOO bar\n", 2, ["unknown instruction FOO"]),
        ("ENV A=1\nFROM python:3.12\n", 1, ["only ARG may come before FROM"]),
        ("FROM python:3.12\nENV A=\"unterminated\n", 2, ["unterminated"]),
        ("FROM python:3.12\nENV A=${NOPE:?must be set}\n", 2, ["must be set"]),
        ("FROM python:3.12\nCOPY onlyone\n", 2, ["a destination"]),
        ("# escape=`\nFROM python:3.12\n", 1, ["escape"]),
    ],
)  # fmt: skip
def test_refusals_name_line_instruction_and_reason(text, line, words):
    error = refused(text)
    assert error.line == line
    assert str(error).startswith(f"Dockerfile line {line}: ")
    for word in words:
        assert word in str(error)


def test_a_dockerfile_needs_from():
    assert "must start with FROM" in str(refused("# nothing\n"))


# --- the build context ----------------------------------------------------------------


@pytest.fixture
def context(tmp_path):
    for relative, content in {
        "app.py": "a", "util.py": "u", "README.md": "r", "requirements.txt": "simplejson\n",
        "pkg/__init__.py": "", "pkg/core.py": "c", "pkg/sub/deep.py": "d",
        "tests/test_app.py": "t", "data/x.json": "{}", ".dockerignore": "tests\n*.md\n",
    }.items():  # fmt: skip
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


def plan(context, line: str, dirs: set[str] | None = None):
    step = next(s for s in recipe(line + "\n").steps if isinstance(s, Copy))
    ignore = DockerIgnore.load(context)
    known = set(dirs or {"/", "/var", "/var/task", "/opt"})
    items = copy_plan(context, step, known, ignore, context_files(context, ignore))
    return {i.dest: i.source.relative_to(context).as_posix() for i in items}, known


def test_copy_into_an_existing_directory_without_a_slash(context):
    assert plan(context, "COPY app.py ${LAMBDA_TASK_ROOT}")[0] == {"/var/task/app.py": "app.py"}
    assert plan(context, "COPY app.py /srv/main.py")[0] == {"/srv/main.py": "app.py"}


def test_copy_globs_and_directories(context):
    assert plan(context, "COPY *.py ./")[0] == {
        "/var/task/app.py": "app.py", "/var/task/util.py": "util.py",
    }  # fmt: skip
    copied, dirs = plan(context, "COPY pkg /opt/lib/pkg")
    assert copied == {
        "/opt/lib/pkg/__init__.py": "pkg/__init__.py",
        "/opt/lib/pkg/core.py": "pkg/core.py",
        "/opt/lib/pkg/sub/deep.py": "pkg/sub/deep.py",
    }
    assert {"/opt/lib", "/opt/lib/pkg", "/opt/lib/pkg/sub"} <= dirs
    everything, _ = plan(context, "COPY . .")
    assert "/var/task/pkg/sub/deep.py" in everything and "/var/task/data/x.json" in everything
    assert not any("tests/" in k or k.endswith(".md") for k in everything)  # .dockerignore


def test_copy_errors(context):
    with pytest.raises(DockerfileError, match="excluded by .dockerignore"):
        plan(context, "COPY README.md ./")
    with pytest.raises(DockerfileError, match="not in the build context"):
        plan(context, "COPY missing.py ./")
    with pytest.raises(DockerfileError, match="outside the build context"):
        plan(context, "COPY ../secret ./")
    with pytest.raises(DockerfileError, match="matches no file"):
        plan(context, "COPY *.go ./")
    with pytest.raises(DockerfileError, match="must be a directory and end with a /"):
        plan(context, "COPY app.py util.py /srv/code")


def test_add_extracts_local_tar_archives(context):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("model.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"ok"))
    (context / "model.tar.gz").write_bytes(buffer.getvalue())
    step = next(s for s in recipe("ADD model.tar.gz /opt/model/\n").steps if isinstance(s, Copy))
    ignore = DockerIgnore.load(context)
    items = copy_plan(context, step, {"/", "/opt"}, ignore, context_files(context, ignore))
    assert [(i.dest, i.extract) for i in items] == [("/opt/model", True)]


def test_dockerignore_patterns():
    ignore = DockerIgnore(["# comment", "**/__pycache__", "*.md", "!KEEP.md", "/build", "docs/**"])
    assert ignore.excluded("pkg/__pycache__/x.pyc")
    assert ignore.excluded("__pycache__")
    assert ignore.excluded("README.md") and not ignore.excluded("KEEP.md")
    assert ignore.excluded("notes.md/inside.txt")  # below an excluded directory
    assert ignore.excluded("build/out.txt") and ignore.excluded("docs/a/b.txt")
    assert not ignore.excluded("pkg/readme.txt")
