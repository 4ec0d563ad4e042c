"""The build steps a Dockerfile becomes: directories, copies and pip installs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImagePath:
    """A pip argument that names a file in the image (mapped into the rootfs when building)."""

    path: str


@dataclass(frozen=True)
class MakeDir:
    """WORKDIR: the directory exists in the image from here on."""

    line: int
    source: str
    path: str


@dataclass(frozen=True)
class Copy:
    """COPY or ADD of build-context files to an absolute image path (ends in / = directory)."""

    line: int
    source: str
    keyword: str
    sources: tuple[str, ...]
    dest: str
    chmod: int | None = None


@dataclass(frozen=True)
class PipInstall:
    """`pip install` with its arguments; `target` is an image path for --target/-t."""

    line: int
    source: str
    args: tuple[str | ImagePath, ...]
    target: str | None = None
    workdir: str = "/"


Step = MakeDir | Copy | PipInstall
