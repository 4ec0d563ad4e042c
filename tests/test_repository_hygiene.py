"""No AWS credentials, private keys or real account ids in the repository's files.

Scans what git would commit: tracked files plus untracked ones that are not ignored, so a
leak is caught before `git add` as well as after. Binary files are skipped. The only
12-digit account id allowed is the local cloud's fake one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcloud.config import FAKE_ACCOUNT_ID

REPO_ROOT = Path(__file__).resolve().parents[1]

# AWS's own documentation examples end in EXAMPLE (AKIAIOSFODNN7EXAMPLE); they are not secrets.
_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_KEY = re.compile(
    r"(?i)(?:aws_?)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?"
    r"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_ACCOUNT_CONTEXTS = (
    ("account id in an ARN", re.compile(r"arn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):")),
    ("account id in an ECR host", re.compile(r"(?<!\d)(\d{12})\.dkr\.ecr\.")),
    (
        "account id in an account field",
        re.compile(r"(?i)account(?:[_-]?id)?[\"']?\s*[:=]\s*[\"']?(\d{12})(?!\d)"),
    ),
)
# A bare 12-digit run; not when it is part of a longer number, word, hex string or decimal.
_STANDALONE_12 = re.compile(r"(?<![\w.])(?<!\d\.)(\d{12})(?!\w)(?!\.\d)")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


@dataclass(frozen=True)
class Finding:
    """One suspicious value: where it is and what it looks like."""

    path: str
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


def _masked(secret: str) -> str:
    """A secret shortened so that the report does not repeat it."""
    return f"{secret[:4]}…{secret[-2:]}"


def scan_line(text: str) -> list[tuple[str, str]]:
    """(kind, excerpt) of every credential or foreign account id on one line."""
    found: list[tuple[str, str]] = []
    for match in _ACCESS_KEY.finditer(text):
        if not match.group().endswith("EXAMPLE"):
            found.append(("AWS access key id", _masked(match.group())))
    for match in _SECRET_KEY.finditer(text):
        if "EXAMPLE" not in match.group(1):
            found.append(("AWS secret access key", _masked(match.group(1))))
    if key_block := _PRIVATE_KEY.search(text):
        found.append(("private key block", key_block.group()))

    reported: set[int] = set()  # start offsets already reported with a context
    for kind, pattern in _ACCOUNT_CONTEXTS:
        for match in pattern.finditer(text):
            reported.add(match.start(1))
            if match.group(1) != FAKE_ACCOUNT_ID:
                found.append((kind, match.group(1)))
    # A UUID's last group can be twelve digits: blank UUIDs out, keeping the offsets.
    without_uuids = _UUID.sub(lambda m: "x" * len(m.group()), text)
    for match in _STANDALONE_12.finditer(without_uuids):
        if match.start(1) not in reported and match.group(1) != FAKE_ACCOUNT_ID:
            found.append(("12-digit number (account id?)", match.group(1)))
    return found


def scan_file(path: Path, shown_as: str) -> list[Finding]:
    """Every finding in one file, by line; binary files have none."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []
    text = data.decode("utf-8", errors="replace")
    return [
        Finding(shown_as, number, kind, excerpt)
        for number, line in enumerate(text.splitlines(), 1)
        for kind, excerpt in scan_line(line)
    ]


def repository_files(root: Path) -> list[Path]:
    """Files git would commit: tracked, plus untracked ones that .gitignore does not exclude."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    paths = {root / name for name in listing.split("\0") if name}
    return sorted(p for p in paths if p.is_file())  # a deleted tracked file is not there


def scan_repository(root: Path) -> list[Finding]:
    """Every finding in the repository's files."""
    return [
        finding
        for path in repository_files(root)
        for finding in scan_file(path, path.relative_to(root).as_posix())
    ]


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# --- the repository ---------------------------------------------------------------------


@needs_git
def test_repository_has_no_credentials_or_real_account_ids() -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    findings = scan_repository(REPO_ROOT)
    assert not findings, (
        "remove these before committing (use the fake account "
        f"{FAKE_ACCOUNT_ID} in examples):\n  " + "\n  ".join(map(str, findings))
    )


# --- the scanner itself, on values planted at run time ----------------------------------
# Built from pieces so that this file itself contains nothing the scanner would flag.

REAL_ACCOUNT = "".join(["2109", "8765", "4321"])
ACCESS_KEY = "AK" + "IA" + "Q3EGRXSNWZ7H2LBK"
SESSION_KEY = "AS" + "IA" + "Y5TJ2M4PZKD8QW6N"
SECRET = "k7Gv+Qe2/Zt9Lw3Bn5Rx" + "Hc8Ja1Ud6Mf4Sy0PiTo/"
PRIVATE_KEY_HEADER = "-----BEGIN " + "RSA PRIVATE" + " KEY-----"


def test_scanner_flags_planted_secrets_with_file_and_line(tmp_path: Path) -> None:
    planted = tmp_path / "leaky.py"
    planted.write_text(
        "\n".join(
            [
                "# nothing on this line",
                f'KEY_ID = "{ACCESS_KEY}"',
                f"aws_secret_access_key = {SECRET}",
                f'{{"SecretAccessKey": "{SECRET}", "Token": "{SESSION_KEY}"}}',
                PRIVATE_KEY_HEADER,
            ]
        )
    )
    assert [str(f) for f in scan_file(planted, "leaky.py")] == [
        f"leaky.py:2: AWS access key id: {ACCESS_KEY[:4]}…{ACCESS_KEY[-2:]}",
        f"leaky.py:3: AWS secret access key: {SECRET[:4]}…{SECRET[-2:]}",
        f"leaky.py:4: AWS access key id: {SESSION_KEY[:4]}…{SESSION_KEY[-2:]}",
        f"leaky.py:4: AWS secret access key: {SECRET[:4]}…{SECRET[-2:]}",
        f"leaky.py:5: private key block: {PRIVATE_KEY_HEADER}",
    ]
    assert SECRET not in "".join(str(f) for f in scan_file(planted, "leaky.py"))


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"arn:aws:iam::{REAL_ACCOUNT}:role/Admin", "account id in an ARN"),
        (f"arn:aws:lambda:us-east-1:{REAL_ACCOUNT}:function:f", "account id in an ARN"),
        (f"{REAL_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app:latest", "account id in an ECR host"),
        (f'"Account": "{REAL_ACCOUNT}",', "account id in an account field"),
        (f"AWS_ACCOUNT_ID={REAL_ACCOUNT}", "account id in an account field"),
        (f"account_id: {REAL_ACCOUNT}", "account id in an account field"),
        (f"my account is {REAL_ACCOUNT}.", "12-digit number (account id?)"),
        (f"bucket scd-{REAL_ACCOUNT}-data", "12-digit number (account id?)"),
    ],
)
def test_scanner_flags_a_real_account_id_once_with_its_context(line: str, kind: str) -> None:
    assert scan_line(line) == [(kind, REAL_ACCOUNT)]


@pytest.mark.parametrize(
    "line",
    [
        f"arn:aws:lambda:us-east-1:{FAKE_ACCOUNT_ID}:function:scd-dev-16-fn",
        f"{FAKE_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/scd-dev-16-app",
        f'"Account": "{FAKE_ACCOUNT_ID}"  plain {FAKE_ACCOUNT_ID}',
        "timestamp 1716123456789 ms",  # 13 digits: a longer number
        "ratio 0.210987654321 and 3.210987654321e5",  # decimals
        "etag a3210987654321f and sha 9f210987654321",  # inside hex words
        "request 12345678-1234-4234-8234-210987654321",  # a UUID's last group
        # AWS's documentation examples
        "AKIAIOSFODNN7EXAMPLE aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = test",  # the local cloud's placeholder
        "-----BEGIN PUBLIC KEY-----",
    ],
)
def test_scanner_accepts_the_fake_account_and_lookalikes(line: str) -> None:
    assert scan_line(line) == []


def test_scanner_skips_binary_files(tmp_path: Path) -> None:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0" + ACCESS_KEY.encode())
    assert scan_file(binary, "image.png") == []


def test_scanner_reports_real_account_ids_in_notebook_outputs(tmp_path: Path) -> None:
    notebook = tmp_path / "16_x.ipynb"
    notebook.write_text(
        '{\n "cells": [\n  {\n   "outputs": [\n'
        f'    {{"text": "arn:aws:iam::{REAL_ACCOUNT}:role/scd-dev-16-role\\n"}}\n'
        "   ]\n  }\n ]\n}\n"
    )
    assert [str(f) for f in scan_file(notebook, "notebooks/16_x.ipynb")] == [
        f"notebooks/16_x.ipynb:5: account id in an ARN: {REAL_ACCOUNT}"
    ]


@needs_git
def test_repository_files_are_what_git_would_commit(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text(".env\nbuild/\n")
    (tmp_path / ".env").write_text(f"AWS_ACCESS_KEY_ID={ACCESS_KEY}\n")  # ignored: local only
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.txt").write_text(REAL_ACCOUNT)
    (tmp_path / "notes.md").write_text(f"deployed to {REAL_ACCOUNT}\n")
    assert repository_files(tmp_path) == [tmp_path / ".gitignore", tmp_path / "notes.md"]
    assert [str(f) for f in scan_repository(tmp_path)] == [
        f"notes.md:1: 12-digit number (account id?): {REAL_ACCOUNT}"
    ]
