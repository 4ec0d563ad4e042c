"""The process runtime's images: a Dockerfile built without Docker, for the local backend.

An image is a directory of the local image store, `<state>/images/<digest hex>/`:

- `rootfs/`: the files COPY/ADD put in the image, at their image paths
  (`COPY app.py ${LAMBDA_TASK_ROOT}` lands in `rootfs/var/task/app.py`);
- `venv/`: a virtual environment (made with `--without-pip`) that sees the course
  environment's packages through a `.pth` file, after its own, so `RUN pip install` lines
  install only what the course environment lacks (pip prints "Requirement already
  satisfied" for the rest) and what they install wins;
- `config.json` and `manifest.json`: a Docker image config and a schema-2 manifest with one
  layer per COPY/ADD/pip step (content digests of the step's files, their sizes in bytes);
- `image.json`: what a runtime needs (see `write_image_json`); read it with
  `localcloud.images.load_local_image(digest)`.

The manifest is put in the local ECR with `imageDigest` = sha256 of its bytes (AWS's rule;
moto would otherwise hash the layer digests), and that digest names the directory. A build
whose Dockerfile, copied files and course environment are unchanged reuses its image (cache
index: `<state>/images/by-context/<key>`), so a re-run is quick and gives the same digest.

Differences from a Docker build: the code runs with this machine's Python, not the base
image's (a warning says so when the versions differ); the course environment's packages are
importable even when the requirements do not list them; file ownership is yours. With
`--target` pip installs every requirement into that directory (pip ignores what is already
installed there), so those packages come from the package index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import dockerfile
from .context import CopyItem, DockerIgnore, context_files, copy_plan
from .dockerfile import Copy, ImagePath, MakeDir, PipInstall, Recipe, Step
from .store import ImageBuildError, LocalBuild, images_root, local_image_dir
from .store import show as _show

FORMAT = 1  # bump when the store's layout changes, so that older cached builds are not reused
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_COURSE_PTH = "_course_environment.pth"

Plan = list[tuple[Step, list[CopyItem]]]


@dataclass(frozen=True)
class Layer:
    """One build step's files: content digest and size in bytes."""

    step: str
    digest: str
    size: int


def build(ecr: Any, repository: dict[str, Any], context: Path, tag: str) -> LocalBuild:
    """Build the context's Dockerfile as a process-runtime image and put it in the local ECR.

    `ecr` is a boto3 ECR client of the local cloud; `repository` is its repository description.
    """
    started, log = time.monotonic(), []
    text = (context / "Dockerfile").read_text()
    recipe = dockerfile.parse(text)
    plan, hashes = _plan(context, recipe)
    root = images_root()
    root.mkdir(parents=True, exist_ok=True)
    _check_python(recipe, log)
    for note in recipe.notes:
        _show(log, f"note: {note}")
    key = _cache_key(text, plan, hashes)
    image_dir = _cached(root, key)
    cached = image_dir is not None
    if image_dir is not None:
        _show(log, f"unchanged build context: reusing image {image_dir.name[:12]}")
        digest = _register(ecr, repository, tag, (image_dir / "manifest.json").read_text())
    else:
        work = root / f".build-{uuid.uuid4().hex[:12]}"
        try:
            manifest = _assemble(work, context, recipe, plan, hashes, log)
            digest = _register(ecr, repository, tag, manifest)
            image_dir = _place(work, local_image_dir(digest))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        (root / "by-context").mkdir(exist_ok=True)
        (root / "by-context" / key).write_text(digest)
    image = write_image_json(image_dir, recipe, digest, repository["repositoryName"], tag)
    uri = repository["repositoryUri"]
    _show(
        log,
        f"pushed {uri}:{tag} {digest[:19]}... ({image['size_bytes'] / 1e6:.2f} MB) "
        f"in {time.monotonic() - started:.1f} s",
    )
    return LocalBuild(digest, image["size_bytes"], log, cached)


def course_site_dirs() -> list[str]:
    """The course interpreter's site-packages directories, in sys.path order."""
    found: list[str] = []
    for entry in sys.path:
        path = Path(entry) if entry else None
        wanted = path and path.name in ("site-packages", "dist-packages") and path.is_dir()
        if wanted and entry not in found:
            found.append(entry)
    return found


def write_image_json(
    image_dir: Path, recipe: Recipe, digest: str, repository: str, tag: str
) -> dict[str, Any]:
    """Write (or update, keeping `created`) the image.json the local runtimes read."""
    path = image_dir / "image.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    tags = list(old.get("tags", [])) if old.get("repository") == repository else []
    tags += [] if tag in tags else [tag]
    image = {
        "digest": digest,
        "repository": repository,
        "tags": tags,
        "base": recipe.base.ref,
        "lambda_base": recipe.base.lambda_base,
        "python_version": recipe.base.python_version,
        "workdir": recipe.workdir,
        "env": recipe.env,
        "entrypoint": recipe.entrypoint,
        "cmd": recipe.cmd,
        "rootfs": str(image_dir / "rootfs"),
        "python": str(_venv_python(image_dir / "venv")),
        "size_bytes": old.get("size_bytes") or _tree_size(image_dir / "rootfs", image_dir / "venv"),
        "created": old.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": recipe.labels,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(image, indent=2))
    temporary.replace(path)
    return image


def _plan(context: Path, recipe: Recipe) -> tuple[Plan, dict[Path, tuple[str, int]]]:
    """Each step with the files it copies, and the content hash and size of every such file."""
    ignore = DockerIgnore.load(context)
    files = context_files(context, ignore)
    dirs = set(recipe.base.dirs)
    plan: Plan = []
    hashes: dict[Path, tuple[str, int]] = {}
    for step in recipe.steps:
        items: list[CopyItem] = []
        if isinstance(step, MakeDir):
            dirs.add(step.path)
        elif isinstance(step, Copy):
            items = copy_plan(context, step, dirs, ignore, files)
            for item in items:
                hashes[item.source] = _file_hash(item.source)
        plan.append((step, items))
    return plan, hashes


def _cache_key(text: str, plan: Plan, hashes: dict[Path, tuple[str, int]]) -> str:
    """A hash of everything the image depends on: Dockerfile, copied files, course env."""
    digest = hashlib.sha256(f"{FORMAT}\n{sys.version}\n{sys.executable}\n{text}\n".encode())
    for site_dir in course_site_dirs():  # a package added to the course env changes pip's work
        digest.update(f"{site_dir} {os.stat(site_dir).st_mtime_ns}\n".encode())
    for _, items in plan:
        for item in items:
            mode = item.source.stat().st_mode & 0o777
            digest.update(
                f"{item.dest} {item.extract} {mode:o} {hashes[item.source][0]}\n".encode()
            )
    return digest.hexdigest()


def _cached(root: Path, key: str) -> Path | None:
    """The complete image an identical build made before, if it is still there."""
    try:
        image_dir = local_image_dir((root / "by-context" / key).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    complete = all((image_dir / name).exists() for name in ("image.json", "manifest.json"))
    return image_dir if complete and _venv_python(image_dir / "venv").exists() else None


def _assemble(
    work: Path,
    context: Path,
    recipe: Recipe,
    plan: Plan,
    hashes: dict[Path, tuple[str, int]],
    log: list[str],
) -> str:
    """Build rootfs/ and venv/ in `work`, write config.json and manifest.json; the manifest."""
    rootfs, venv = work / "rootfs", work / "venv"
    for directory in recipe.base.dirs:
        _in_rootfs(rootfs, directory).mkdir(parents=True, exist_ok=True)
    total = len(plan) + 1
    _show(log, f"Step 1/{total} : FROM {recipe.base.ref}")
    python = _make_venv(venv)
    layers = []
    for number, (step, items) in enumerate(plan, 2):
        _show(log, f"Step {number}/{total} : {step.source}")
        if isinstance(step, MakeDir):
            _in_rootfs(rootfs, step.path).mkdir(parents=True, exist_ok=True)
        elif isinstance(step, Copy):
            layers.append(_copy(rootfs, step, items, hashes))
        elif isinstance(step, PipInstall):
            layers.append(_pip(work, python, step, log))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [f"{k}={v}" for k, v in recipe.env.items()],
            "Entrypoint": recipe.entrypoint or None,
            "Cmd": recipe.cmd or None,
            "WorkingDir": recipe.workdir,
            "Labels": recipe.labels or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "history": [{"created_by": layer.step} for layer in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    (work / "config.json").write_bytes(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "size": len(config_bytes),
            "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        },
        "layers": [
            {"mediaType": LAYER_TYPE, "size": layer.size, "digest": layer.digest}
            for layer in layers
        ],
    }
    text = json.dumps(manifest, indent=3)
    (work / "manifest.json").write_text(text)
    return text


def _make_venv(venv: Path) -> Path:
    """A pip-less virtual environment that sees the course environment's packages last."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    site_packages = Path(
        sysconfig.get_path("purelib", "venv", {"base": str(venv), "platbase": str(venv)})
    )
    lines = [f"import site; site.addsitedir({d!r})\n" for d in course_site_dirs()]
    (site_packages / _COURSE_PTH).write_text("".join(lines))
    return _venv_python(venv)


def _copy(
    rootfs: Path, step: Copy, items: list[CopyItem], hashes: dict[Path, tuple[str, int]]
) -> Layer:
    """Copy (or extract) the step's files into the rootfs; the step's layer."""
    entries = []
    for item in items:
        target = _in_rootfs(rootfs, item.dest)
        if item.extract:
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(item.source) as archive:
                archive.extractall(target, filter="data")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.source, target)
            if step.chmod is not None:
                target.chmod(step.chmod)
        content, size = hashes[item.source]
        entries.append((item.dest, target.stat().st_mode & 0o777, content, size))
    return _layer(step.source, entries)


def _pip(work: Path, python: Path, step: PipInstall, log: list[str]) -> Layer:
    """Run pip for the image's venv (or --target directory); the files it added are the layer."""
    rootfs = work / "rootfs"
    watched = _in_rootfs(rootfs, step.target) if step.target else work / "venv"
    watched.mkdir(parents=True, exist_ok=True)
    args = []
    for arg in step.args:
        if isinstance(arg, ImagePath):
            local = _in_rootfs(rootfs, arg.path)
            if not local.exists():
                raise ImageBuildError(
                    f"Dockerfile line {step.line}: {step.source}\n  {arg.path} is not in the "
                    "image: COPY it into the image before this step."
                )
            arg = str(local)
        args.append(arg)
    command = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        *args,
    ]
    if step.target:
        command += ["--target", str(watched)]
    before = _snapshot(watched)
    cwd = _in_rootfs(rootfs, step.workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_NO_INPUT": "1"}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    tail: deque[str] = deque(maxlen=8)
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            shown = _as_seen_in_image(line.rstrip(), work)
            _show(log, "  " + shown)
            tail.append(shown)
    if process.wait() != 0:
        raise ImageBuildError(
            f"Dockerfile line {step.line}: {step.source}\n  pip failed (exit "
            f"{process.returncode}):\n    " + "\n    ".join(tail) + "\n  Packages the course "
            "environment lacks come from the package index: check the name and the network."
        )
    after = _snapshot(watched)
    prefix = step.target or "<venv>"
    marker = str(work).encode()
    entries, size = [], 0
    for relative in sorted(p for p, sig in after.items() if before.get(p) != sig):
        path = watched / relative
        size += path.lstat().st_size
        if relative.endswith((".pyc", "/RECORD")) or path.is_symlink():
            continue  # they hold absolute build paths: counted in the size, not in the digest
        content = hashlib.sha256(path.read_bytes().replace(marker, b"<image>")).hexdigest()
        entries.append((f"{prefix}/{relative}", path.stat().st_mode & 0o777, content, 0))
    return _layer(step.source, entries, size)


def _register(ecr: Any, repository: dict[str, Any], tag: str, manifest: str) -> str:
    """PutImage the manifest with its AWS digest (sha256 of its bytes); the digest ECR returns."""
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    try:
        response = ecr.put_image(
            repositoryName=repository["repositoryName"],
            imageManifest=manifest,
            imageManifestMediaType=MANIFEST_TYPE,
            imageTag=tag,
            imageDigest=digest,
        )
    except ecr.exceptions.ImageAlreadyExistsException:
        return digest  # the same image under the same tag: nothing to do
    return response["image"]["imageId"]["imageDigest"]


def _as_seen_in_image(line: str, work: Path) -> str:
    """pip's line with this machine's paths replaced: image paths as the image sees them.

    Build output lands in notebooks, whose committed outputs must not carry machine paths.
    """
    line = line.replace(str(work / "rootfs"), "").replace(str(work / "venv"), "<image venv>")
    for site_dir in course_site_dirs():
        line = line.replace(site_dir, "<course environment>")
    return line


def _place(work: Path, final: Path) -> Path:
    """Move the finished build to its digest directory and fix the paths that name `work`."""
    if final.exists():
        return final  # the same image was built before (e.g. from another context)
    try:
        work.rename(final)
    except OSError:
        if final.exists():
            return final
        raise
    old, new = str(work).encode(), str(final).encode()
    for folder, _, names in os.walk(final):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or path.suffix == ".pyc" or path.stat().st_size > 1 << 20:
                continue
            content = path.read_bytes()
            if old in content:
                path.write_bytes(content.replace(old, new))
    return final


def _check_python(recipe: Recipe, log: list[str]) -> None:
    """Warn when the base image implies another Python than the one the code will run with."""
    wanted, local = recipe.base.python_version, f"{sys.version_info[0]}.{sys.version_info[1]}"
    if wanted and wanted != local:
        _show(
            log,
            f"warning: {recipe.base.ref} runs Python {wanted}; the local process "
            f"runtime runs the code with this machine's Python {local} (a documented "
            "difference of the local backend)",
        )


def _layer(step: str, entries: list[tuple[str, int, str, int]], size: int | None = None) -> Layer:
    """A layer's digest (over paths, modes and content hashes) and size (file bytes)."""
    listing = "".join(f"{path}\t{mode:o}\t{content}\n" for path, mode, content, _ in entries)
    digest = "sha256:" + hashlib.sha256(listing.encode()).hexdigest()
    return Layer(step, digest, sum(e[3] for e in entries) if size is None else size)


def _file_hash(path: Path) -> tuple[str, int]:
    """sha256 hex and size of a file."""
    content = path.read_bytes()
    return hashlib.sha256(content).hexdigest(), len(content)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below a folder (relative path -> size, mtime) to see what a step changed."""
    found = {}
    for current, _, names in os.walk(folder):
        for name in names:
            path = Path(current) / name
            info = path.lstat()
            found[path.relative_to(folder).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


def _in_rootfs(rootfs: Path, image_path: str) -> Path:
    """Where an absolute image path lives in the rootfs."""
    return rootfs / image_path.lstrip("/")


def _venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _tree_size(*folders: Path) -> int:
    """Bytes of the regular files below the folders (symlinks to the base Python not counted)."""
    total = 0
    for folder in folders:
        for current, _, names in os.walk(folder):
            for name in names:
                path = Path(current) / name
                total += 0 if path.is_symlink() else path.stat().st_size
    return total
