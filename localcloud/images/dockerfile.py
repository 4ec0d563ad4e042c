"""Dockerfiles read for the process runtime: what the local backend builds without Docker.

`parse(text)` turns a Dockerfile into a `Recipe`: the base image, the build steps (make a
directory, copy files, `pip install`) and the image's configuration (env, workdir, entrypoint,
cmd). Each instruction is honoured, ignored with a note (only metadata that does not change
how the code runs), or refused with a `DockerfileError` naming its line and why:

- honoured: FROM (one stage), ARG, ENV, WORKDIR, COPY/ADD of local files (globs, directories,
  `--chmod`; ADD extracts local tar archives), `RUN pip install ...` (also `pip3`,
  `python -m pip`, `-r`, `--target`), `RUN mkdir`, CMD, ENTRYPOINT, SHELL, LABEL, MAINTAINER;
- ignored with a note: EXPOSE, USER, VOLUME, HEALTHCHECK, STOPSIGNAL, ONBUILD, `COPY --chown`,
  `RUN --mount=type=cache`, pip commands that do not change the image, cache clean-ups;
- refused: any other RUN command (there is no operating system image to run it in),
  `FROM scratch`, multi-stage builds, `COPY --from`, ADD from URLs, heredocs.

Variables (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`) are substituted as Docker
does, from ARG values and ENV, including the base image's own (`LAMBDA_TASK_ROOT=/var/task`).
Shell words: `words`; RUN lines: `run`; the build context (COPY sources, `.dockerignore`):
`context`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from .run import run_steps
from .steps import Copy, ImagePath, MakeDir, PipInstall, Step
from .words import (
    DockerfileError,
    Instruction,
    WordError,
    expand,
    json_form,
    process_word,
    refuse,
    split_instructions,
    split_words,
)

__all__ = [
    "BaseImage",
    "Copy",
    "DockerfileError",
    "ImagePath",
    "MakeDir",
    "PipInstall",
    "Recipe",
    "Step",
    "base_image",
    "parse",
    "split_instructions",
]

LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_ENTRYPOINT = "/lambda-entrypoint.sh"
_LAMBDA_REPOS = re.compile(
    r"^(?:public\.ecr\.aws/lambda/|(?:docker\.io/)?amazon/aws-lambda-)(\w+)$"
)
_PYTHON_REPOS = re.compile(r"^(?:docker\.io/)?(?:library/)?python$")
_PLATFORM_ARGS = {
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
}
_HANDLED = (
    "FROM",
    "ARG",
    "ENV",
    "LABEL",
    "MAINTAINER",
    "WORKDIR",
    "COPY",
    "ADD",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
)
_NOTED = {
    "EXPOSE": "ports are metadata; the process runtime publishes none",
    "USER": "the process runtime runs the code as you",
    "VOLUME": "the process runtime mounts no volumes",
    "HEALTHCHECK": "Lambda ignores container health checks",
    "STOPSIGNAL": "the process runtime stops processes with SIGTERM",
    "ONBUILD": "it only affects images built FROM this one",
}


@dataclass(frozen=True)
class BaseImage:
    """What the course knows about a FROM image without pulling it."""

    ref: str
    lambda_base: bool
    python_version: str | None
    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    cmd: list[str]
    dirs: tuple[str, ...]
    hidden_env: dict[str, str] = field(default_factory=dict)  # substitution only (image paths)


@dataclass
class Recipe:
    """A parsed Dockerfile: base image, build steps, final configuration and notes."""

    base: BaseImage
    steps: list[Step]
    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    cmd: list[str]
    labels: dict[str, str]
    notes: list[str]


def base_image(ref: str) -> BaseImage:
    """The configuration the course assumes for a FROM reference (Lambda, python or other)."""
    name, tag = _split_ref(ref)
    version = re.match(r"^(\d+\.\d+)(?:[.\-]|$)", tag or "")
    python_version = version.group(1) if version else None
    lambda_repo = _LAMBDA_REPOS.match(name)
    if lambda_repo:
        runtime = lambda_repo.group(1)
        env = {
            "LANG": "en_US.UTF-8",
            "TZ": ":/etc/localtime",
            "LAMBDA_TASK_ROOT": LAMBDA_TASK_ROOT,
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
        }
        hidden = {
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
            "/var/task:/var/task/lib:/opt/lib",
        }
        dirs = ("/", "/opt", "/tmp", "/var", "/var/runtime", LAMBDA_TASK_ROOT)
        version_out = python_version if runtime == "python" else None
        return BaseImage(
            ref, True, version_out, env, LAMBDA_TASK_ROOT, [LAMBDA_ENTRYPOINT], [], dirs, hidden
        )
    dirs = ("/", "/opt", "/tmp", "/var", "/usr", "/usr/local", "/home", "/root", "/etc")
    if _PYTHON_REPOS.match(name):
        hidden = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
        return BaseImage(
            ref, False, python_version, {"LANG": "C.UTF-8"}, "/", [], ["python3"], dirs, hidden
        )
    return BaseImage(ref, False, None, {}, "/", [], [], dirs)


def parse(text: str) -> Recipe:
    """Parse a Dockerfile into a Recipe, or raise DockerfileError for what cannot be honoured."""
    return _Parser().run(split_instructions(text))


def _split_ref(ref: str) -> tuple[str, str | None]:
    """An image reference's repository and tag (None when pinned by digest or untagged)."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        return name.lower(), None if "@" in ref else tag
    return name.lower(), None


class _Parser:
    """The state of one pass over the instructions."""

    def __init__(self) -> None:
        self.global_args: dict[str, str] = {}
        self.args: dict[str, str] = {}
        self.base: BaseImage | None = None
        self.env: dict[str, str] = {}
        self.steps: list[Step] = []
        self.labels: dict[str, str] = {}
        self.notes: list[str] = []
        self.shell = ["/bin/sh", "-c"]
        self.workdir = "/"
        self.entrypoint: list[str] = []
        self.cmd: list[str] = []
        self.cmd_set_here = False

    def run(self, instructions: list[Instruction]) -> Recipe:
        if not any(i.keyword == "FROM" for i in instructions):
            raise DockerfileError(1, "(no FROM)", "a Dockerfile must start with FROM.")
        for instruction in instructions:
            try:
                self.handle(instruction)
            except WordError as error:
                raise DockerfileError(instruction.line, instruction.source, str(error)) from None
        assert self.base is not None
        return Recipe(
            self.base,
            self.steps,
            self.env,
            self.workdir,
            self.entrypoint,
            self.cmd,
            self.labels,
            self.notes,
        )

    @property
    def variables(self) -> dict[str, str]:
        """What $VAR expands to here: base image env, ARG values, then ENV (which wins)."""
        hidden = self.base.hidden_env if self.base else {}
        return {**hidden, **self.args, **self.env}

    def handle(self, ins: Instruction) -> None:
        keyword = ins.keyword
        if self.base is None and keyword not in ("ARG", "FROM"):
            raise refuse(ins, "only ARG may come before FROM.")
        if keyword in _HANDLED:
            getattr(self, f"_{keyword.lower()}")(ins)
        elif keyword in _NOTED:
            self.notes.append(f"line {ins.line}: {ins.source} ignored: {_NOTED[keyword]}")
        else:
            raise refuse(ins, f"unknown instruction {keyword}.")

    def _from(self, ins: Instruction) -> None:
        if self.base is not None:
            raise refuse(
                ins,
                "multi-stage builds (a second FROM) are not supported by the process runtime: "
                "use one stage.",
            )
        words = [process_word(w, self.global_args) for w in split_words(ins.text)]
        words = [w for w in words if not w.lower().startswith("--platform")]
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise refuse(ins, "FROM takes an image and an optional AS name.")
        if words[0].lower() == "scratch":
            raise refuse(
                ins,
                "an empty image has no Python: the process runtime needs a Python or AWS "
                "Lambda base image (e.g. public.ecr.aws/lambda/python:3.12).",
            )
        self.base = base_image(words[0])
        self.env = dict(self.base.env)
        self.workdir = self.base.workdir
        self.entrypoint, self.cmd = list(self.base.entrypoint), list(self.base.cmd)

    def _arg(self, ins: Instruction) -> None:
        scope = self.global_args if self.base is None else self.args
        for word in split_words(ins.text):
            name, has_value, value = word.partition("=")
            if has_value:
                scope[name] = process_word(value, {**self.variables, **self.global_args})
            elif self.base is not None and name in self.global_args:
                scope[name] = self.global_args[name]
            elif name in _PLATFORM_ARGS:
                scope[name] = _PLATFORM_ARGS[name]

    def _env(self, ins: Instruction) -> None:
        self.env.update(self._pairs(ins))

    def _label(self, ins: Instruction) -> None:
        self.labels.update(self._pairs(ins))

    def _maintainer(self, ins: Instruction) -> None:
        self.labels["maintainer"] = ins.text

    def _pairs(self, ins: Instruction) -> dict[str, str]:
        """KEY=value pairs (or the legacy `KEY value` form) of ENV and LABEL."""
        words, variables = split_words(ins.text), self.variables
        if not words:
            raise refuse(ins, f"{ins.keyword} needs KEY=value.")
        if "=" not in words[0]:
            rest = ins.text[len(words[0]) :].strip()
            if not rest:
                raise refuse(ins, f"{words[0]} has no value.")
            return {process_word(words[0], variables): process_word(rest, variables)}
        pairs = {}
        for word in words:
            key, has_value, value = word.partition("=")
            if not has_value:
                raise refuse(ins, f"{word!r} must be of the form KEY=value.")
            pairs[process_word(key, variables)] = process_word(value, variables)
        return pairs

    def _workdir(self, ins: Instruction) -> None:
        path = process_word(ins.text, self.variables)
        self.workdir = posixpath.normpath(posixpath.join(self.workdir, path))
        self.steps.append(MakeDir(ins.line, ins.source, self.workdir))

    def _copy(self, ins: Instruction) -> None:
        words = split_words(ins.text)
        chmod = None
        while words and words[0].startswith("--"):
            flag, _, value = words.pop(0).partition("=")
            if flag == "--from":
                raise refuse(
                    ins,
                    "COPY --from copies out of another stage or image (a multi-stage build), "
                    "which the process runtime does not build: copy from the build context.",
                )
            if flag == "--chmod" and re.fullmatch(r"[0-7]{3,4}", value):
                chmod = int(value, 8)
            elif flag == "--chown":
                self.notes.append(f"line {ins.line}: --chown ignored: files belong to you")
            elif flag != "--link":
                raise refuse(ins, f"{ins.keyword} {flag} is not supported here.")
        rest = ins.text[ins.text.find(words[0]) :] if words else ""
        listed = json_form(rest)
        if listed is not None:
            paths = [expand(w, self.variables) for w in listed]
        else:
            paths = [process_word(w, self.variables) for w in words]
        if len(paths) < 2:
            raise refuse(ins, f"{ins.keyword} needs at least one source and a destination.")
        for source in paths[:-1]:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^git@", source):
                raise refuse(
                    ins,
                    f"{source} is not in the build context: download it into the build "
                    "context and COPY it (the process runtime fetches nothing while building).",
                )
        dest = paths[-1]
        is_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
        dest = posixpath.normpath(posixpath.join(self.workdir, dest))
        dest = dest.rstrip("/") + "/" if is_dir else dest
        self.steps.append(Copy(ins.line, ins.source, ins.keyword, tuple(paths[:-1]), dest, chmod))

    _add = _copy

    def _run(self, ins: Instruction) -> None:
        steps, notes = run_steps(ins, self.variables, self.workdir)
        self.steps += steps
        self.notes += notes

    def _cmd(self, ins: Instruction) -> None:
        self.cmd, self.cmd_set_here = self._command(ins), True

    def _entrypoint(self, ins: Instruction) -> None:
        self.entrypoint = self._command(ins)
        if not self.cmd_set_here:
            self.cmd = []  # Docker: a new ENTRYPOINT drops the CMD inherited from the base

    def _shell(self, ins: Instruction) -> None:
        listed = json_form(ins.text)
        if not listed:
            raise refuse(ins, 'SHELL needs the JSON form ["sh", "-c"].')
        self.shell = listed

    def _command(self, ins: Instruction) -> list[str]:
        """CMD/ENTRYPOINT: the JSON (exec) form as given, the shell form wrapped in SHELL."""
        listed = json_form(ins.text)
        if listed is not None:
            return listed
        return [*self.shell, ins.text] if ins.text else []
