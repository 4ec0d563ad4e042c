"""The build context of a Dockerfile: `.dockerignore` and where each COPY/ADD puts which file.

`copy_plan` follows Docker's rules: sources are relative to the context and may not leave it;
wildcards (`*`, `?`, `[...]`) match within one path segment; a directory source copies its
contents; a destination ending in `/`, or naming a directory the image already has, receives
the files by name (`COPY app.py ${LAMBDA_TASK_ROOT}` lands in `/var/task/app.py`); several
sources need such a directory. ADD extracts local tar archives. `.dockerignore` patterns
(with `**` and `!` exceptions) hide files from COPY as they hide them from Docker.
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .dockerfile import Copy, DockerfileError


@dataclass(frozen=True)
class CopyItem:
    """One file (or tar archive to extract) and its absolute destination in the image."""

    source: Path
    dest: str
    extract: bool = False


class DockerIgnore:
    """The context's .dockerignore patterns; the last matching pattern decides."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[tuple[re.Pattern[str], bool]] = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
            self.patterns.append((re.compile(_translate(pattern)), negated))

    @classmethod
    def load(cls, context: Path) -> DockerIgnore:
        """The patterns of `<context>/.dockerignore` (none if it does not exist)."""
        path = context / ".dockerignore"
        return cls(path.read_text().splitlines() if path.exists() else [])

    def excluded(self, relative: str) -> bool:
        """True when a context path (relative, with /) is hidden from COPY."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for pattern, negated in self.patterns:
            if any(pattern.fullmatch(c) for c in candidates):
                result = not negated
        return result


def context_files(context: Path, ignore: DockerIgnore) -> list[str]:
    """Every file and directory of the context (relative paths), minus the ignored ones."""
    found = []
    for folder, dirnames, filenames in os.walk(context):
        dirnames.sort()
        base = Path(folder).relative_to(context).as_posix()
        for name in dirnames + sorted(filenames):
            relative = name if base == "." else f"{base}/{name}"
            if not ignore.excluded(relative):
                found.append(relative)
    return found


def copy_plan(
    context: Path, step: Copy, dirs: set[str], ignore: DockerIgnore, files: list[str]
) -> list[CopyItem]:
    """Where each source of a COPY/ADD goes; `dirs` (the image's directories) is updated."""
    matched: list[str] = []
    for source in step.sources:
        relative = posixpath.normpath(source.lstrip("/")) if source.strip("/") else "."
        if relative == ".." or relative.startswith("../"):
            raise DockerfileError(step.line, step.source, f"{source} is outside the build context.")
        if re.search(r"[*?\[]", relative):
            pattern = re.compile(_translate(relative, recursive=False))
            hits = [f for f in files if pattern.fullmatch(f)]
            if not hits:
                raise DockerfileError(
                    step.line, step.source, f"{source} matches no file in the build context."
                )
            matched += hits
        elif relative == "." or relative in files:
            matched.append(relative)
        else:
            hidden = (context / relative).exists()
            why = "is excluded by .dockerignore" if hidden else "is not in the build context"
            raise DockerfileError(step.line, step.source, f"{source} {why} ({context}).")
    into_dir = step.dest.endswith("/") or step.dest in dirs
    dest = step.dest.rstrip("/") or "/"
    if len(matched) > 1 and not into_dir:
        raise DockerfileError(
            step.line,
            step.source,
            f"with more than one source file the destination must be a directory and end "
            f"with a / ({step.dest}/).",
        )
    items: list[CopyItem] = []
    for relative in matched:
        path = context / relative if relative != "." else context
        if path.is_dir():
            prefix = "" if relative == "." else relative + "/"
            _add_dir(dirs, dest)
            for inner in files:
                if inner.startswith(prefix) and inner != relative:
                    target = posixpath.join(dest, inner[len(prefix) :])
                    if (context / inner).is_dir():
                        _add_dir(dirs, target)
                    else:
                        items.append(CopyItem(context / inner, target))
        elif step.keyword == "ADD" and tarfile.is_tarfile(path):
            _add_dir(dirs, dest)
            items.append(CopyItem(path, dest, extract=True))
        else:
            target = posixpath.join(dest, path.name) if into_dir else dest
            _add_dir(dirs, posixpath.dirname(target))
            items.append(CopyItem(path, target))
    return items


def _add_dir(dirs: set[str], path: str) -> None:
    """Record a directory and its parents as existing in the image."""
    while path not in dirs:
        dirs.add(path)
        if path == "/":
            break
        path = posixpath.dirname(path)


def _translate(pattern: str, recursive: bool = True) -> str:
    """A Docker path pattern as a regular expression (`**` only where recursive)."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if recursive and pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif recursive and pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end + 1
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)
