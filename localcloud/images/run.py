"""RUN instructions for the process runtime: `pip install` is honoured, little else.

A RUN line is split into commands at `&&` and `;`. Each command must be one of:

- `pip install ...` (also `pip3`, `pip3.12`, `python -m pip`, `python3 -m pip`): a PipInstall
  step; `-r`/`-c`/`-e`/`--find-links`/local paths become image paths, `--target`/`-t` the
  step's target; `pip` itself is skipped (the course's pip does the installing);
- `mkdir [-p] DIR...`: a directory in the image;
- pip commands that change nothing (`pip cache purge`, `pip list`, `pip --version`), `echo`,
  `true` and `rm` of cache directories: ignored with a note.

Anything else (`apt-get`, `yum`, `curl`, pipes, redirections) is refused: there is no
operating-system image to run it in.
"""

from __future__ import annotations

import posixpath
import re

from .steps import ImagePath, MakeDir, PipInstall, Step
from .words import Instruction, json_form, lex, process_word, refuse

_PIP = re.compile(r"pip(?:3(?:\.\d+)?)?")
_PYTHON = re.compile(r"python(?:3(?:\.\d+)?)?")
_GENERAL_VALUED = {
    "--cache-dir",
    "--log",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--python",
    "--keyring-provider",
}
_SHORT = {
    "-r": "--requirement",
    "-c": "--constraint",
    "-t": "--target",
    "-e": "--editable",
    "-f": "--find-links",
    "-i": "--index-url",
    "-C": "--config-settings",
}
_VALUED = (
    set(_SHORT.values())
    | _GENERAL_VALUED
    | {
        "--extra-index-url",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--only-binary",
        "--no-binary",
        "--progress-bar",
        "--upgrade-strategy",
        "--global-option",
        "--report",
        "--src",
        "--root-user-action",
        "--use-feature",
        "--use-deprecated",
    }
)
_PATH_VALUED = {"--requirement", "--constraint", "--editable", "--find-links"}
_REFUSED = {"--user", "--prefix", "--root", "--python", "--home"}
_HARMLESS_PIP = {"cache", "list", "freeze", "show", "check", "config", "help", "debug", "inspect"}
_CACHE_PATH = re.compile(r"(^|/)\.cache(/|$)|^/tmp/|^/var/cache/|^~/\.cache")
_SYSTEM_TOOLS = {"apt-get", "apt", "yum", "dnf", "microdnf", "apk", "rpm", "dpkg"}


def run_steps(
    ins: Instruction, variables: dict[str, str], workdir: str
) -> tuple[list[Step], list[str]]:
    """The build steps and notes of one RUN instruction, or DockerfileError."""
    text, notes = ins.text, []
    while text.startswith("--"):
        flag_word, _, text = text.partition(" ")
        text = text.strip()
        flag, _, value = flag_word.partition("=")
        if flag == "--mount" and "type=cache" in value:
            notes.append(f"line {ins.line}: RUN {flag_word} ignored: nothing is cached that way")
        elif flag == "--network":
            notes.append(f"line {ins.line}: RUN {flag_word} ignored: pip uses this machine's")
        else:
            raise refuse(ins, f"RUN {flag} is not supported here.")
    listed = json_form(text)
    commands = [listed] if listed is not None else _commands(ins, text, variables)
    steps: list[Step] = []
    for argv in commands:
        if not argv:
            continue
        rest = _pip_arguments(argv)
        if rest is not None:
            step = _pip(ins, argv, rest, workdir, notes)
            if step is not None:
                steps.append(step)
        elif posixpath.basename(argv[0]) == "mkdir":
            for path in (a for a in argv[1:] if not a.startswith("-")):
                full = posixpath.normpath(posixpath.join(workdir, path))
                steps.append(MakeDir(ins.line, ins.source, full))
        elif _harmless(argv):
            notes.append(
                f"line {ins.line}: `{' '.join(argv)}` ignored: it does not change the image"
            )
        else:
            raise refuse(ins, _refusal(argv[0]))
    return steps, notes


def _commands(ins: Instruction, text: str, variables: dict[str, str]) -> list[list[str]]:
    """The shell form split into commands at && and ;, words processed like the shell would."""
    commands: list[list[str]] = [[]]
    for token in lex(text, operators=True):
        if token.operator and token.text in ("&&", ";"):
            commands.append([])
        elif token.operator:
            raise refuse(
                ins,
                f"the shell operator {token.text!r} is not supported by the process runtime: "
                "RUN may hold only `pip install` commands joined by && or ;.",
            )
        else:
            commands[-1].append(process_word(token.text, variables))
    return commands


def _pip_arguments(argv: list[str]) -> list[str] | None:
    """The arguments after `pip` / `python -m pip`, or None when the command is not pip."""
    program = posixpath.basename(argv[0])
    if _PIP.fullmatch(program):
        return argv[1:]
    if _PYTHON.fullmatch(program) and argv[1:3] == ["-m", "pip"]:
        return argv[3:]
    return None


def _pip(
    ins: Instruction, argv: list[str], rest: list[str], workdir: str, notes: list[str]
) -> PipInstall | None:
    """A `pip install` step (None when there is nothing to install); other pip commands noted."""
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        i += 2 if rest[i] in _GENERAL_VALUED else 1
    command = rest[i] if i < len(rest) else None
    words = rest[:i] + rest[i + 1 :]
    if command != "install":
        if command is None or command in _HARMLESS_PIP:
            notes.append(
                f"line {ins.line}: `{' '.join(argv)}` ignored: it does not change the image"
            )
            return None
        raise refuse(ins, f"`pip {command}` is not supported: only `pip install` is.")
    args: list[str | ImagePath] = []
    target, installs = None, 0
    for option, value in _options(ins, words):
        if option in _REFUSED:
            raise refuse(
                ins,
                f"pip {option} would install outside the image's Python environment.",
            )
        if option == "--target":
            target = _image_path(workdir, value or "")
        elif option is None and re.match(r"^pip\s*(?:[<>=!~;\[]|$)", value or "", re.I):
            notes.append(f"line {ins.line}: `{value}` skipped: the course's pip installs")
        elif option is None:
            installs += 1
            args.append(ImagePath(_image_path(workdir, value)) if _is_path(value) else value)
        else:
            installs += option in ("--requirement", "--editable")
            args.append(option)
            if value is not None:
                local = option in _PATH_VALUED and "://" not in value
                args.append(ImagePath(_image_path(workdir, value)) if local else value)
    if not installs:
        notes.append(f"line {ins.line}: `{' '.join(argv)}` skipped: nothing left to install")
        return None
    return PipInstall(ins.line, ins.source, tuple(args), target, workdir)


def _options(ins: Instruction, words: list[str]) -> list[tuple[str | None, str | None]]:
    """(option, value) pairs in long form; positional arguments as (None, argument)."""
    pairs: list[tuple[str | None, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-") or word == "-":
            pairs.append((None, word))
            continue
        if word[:2] in _SHORT and len(word) > 2:  # -rrequirements.txt
            pairs.append((_SHORT[word[:2]], word[2:]))
            continue
        option, has_value, value = word.partition("=")
        option = _SHORT.get(option, option)
        if option in _VALUED and not has_value:
            if i >= len(words):
                raise refuse(ins, f"pip {word} needs a value.")
            value, has_value = words[i], "="
            i += 1
        pairs.append((option, value if has_value else None))
    return pairs


def _is_path(argument: str) -> bool:
    """True when a pip argument names a local file or directory rather than a requirement."""
    if "://" in argument or " @ " in argument:
        return False
    return (
        argument.startswith((".", "/", "~"))
        or "/" in argument
        or argument.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2"))
    )


def _image_path(workdir: str, path: str) -> str:
    """An absolute, normalised image path."""
    return posixpath.normpath(posixpath.join(workdir, path))


def _harmless(argv: list[str]) -> bool:
    """echo, true, and rm of cache directories: nothing the process runtime needs to do."""
    program = posixpath.basename(argv[0])
    if program in ("echo", "true", ":"):
        return True
    paths = [a for a in argv[1:] if not a.startswith("-")]
    return program == "rm" and bool(paths) and all(_CACHE_PATH.search(p) for p in paths)


def _refusal(program: str) -> str:
    """Why a command cannot run, and what to do instead."""
    name = posixpath.basename(program)
    why = (
        f"`{name}` installs operating-system packages, which the process runtime cannot do "
        "(it has no operating-system image): install them on this machine, or build the "
        'image with Docker on AWS (BACKEND = "aws").'
        if name in _SYSTEM_TOOLS
        else f"the process runtime runs only `pip install` (and mkdir) in RUN; `{name}` would "
        'need the base image\'s operating system. Remove the step, or use BACKEND = "aws".'
    )
    return why
