"""The lexical layer of Dockerfiles: instructions (lines) and shell-like words in them.

`split_instructions` joins continuation lines and drops comments, blank lines and parser
directives; each Instruction keeps its first line number for error messages.

Docker processes ENV, ARG, LABEL, WORKDIR, COPY and ADD arguments this way (and a RUN line's
shell would do the same): words split on unquoted whitespace, single quotes keep everything
literal, double quotes allow `$` expansion, a backslash escapes the next character. Supported
expansions: `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:+alt}`,
`${NAME+alt}`, `${NAME:?message}`, `${NAME?message}`; unknown names expand to "".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import NamedTuple

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("&&", "||", ">>", ";", "&", "|", "<", ">", "(", ")")


class DockerfileError(ValueError):
    """An instruction the process runtime cannot honour, with its line number and the reason."""

    def __init__(self, line: int, instruction: str, why: str) -> None:
        shown = instruction if len(instruction) <= 100 else instruction[:97] + "..."
        super().__init__(f"Dockerfile line {line}: {shown}\n  {why}")
        self.line, self.instruction, self.why = line, instruction, why


def refuse(ins: Instruction, why: str) -> DockerfileError:
    """The error for an instruction the process runtime cannot honour."""
    return DockerfileError(ins.line, ins.source, why)


@dataclass(frozen=True)
class Instruction:
    """One instruction: its first line number, keyword (upper case) and argument text."""

    line: int
    keyword: str
    text: str

    @property
    def source(self) -> str:
        """The instruction as written (continuations joined, whitespace runs collapsed)."""
        return " ".join(f"{self.keyword} {self.text}".split())


class WordError(ValueError):
    """A malformed word: an unterminated quote or `${`, or a `${NAME?}` that is unset."""


class Token(NamedTuple):
    """A raw word (quotes still in it) or a shell operator such as `&&`."""

    text: str
    operator: bool = False


def lex(text: str, operators: bool = False) -> list[Token]:
    """Split into raw words (and, for RUN lines, shell operators outside quotes)."""
    tokens: list[Token] = []
    current: list[str] = []
    quote: str | None = None
    i = 0

    def flush() -> None:
        if current:
            tokens.append(Token("".join(current)))
            current.clear()

    while i < len(text):
        char = text[i]
        if quote:
            current.append(char)
            if char == "\\" and quote == '"' and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif char == quote:
                quote = None
            i += 1
            continue
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char in "'\"":
            quote = char
            current.append(char)
        elif char.isspace():
            flush()
        elif operators and char in "&|;<>()":
            flush()
            operator = next(op for op in _OPERATORS if text.startswith(op, i))
            tokens.append(Token(operator, True))
            i += len(operator)
            continue
        else:
            current.append(char)
        i += 1
    if quote:
        raise WordError(f"unterminated {quote} quote")
    flush()
    return tokens


def split_words(text: str) -> list[str]:
    """Raw words split on unquoted whitespace (quotes and escapes still in them)."""
    return [token.text for token in lex(text)]


def process_word(raw: str, env: dict[str, str]) -> str:
    """One word as Docker sees it: quotes removed, escapes applied, variables expanded."""
    return _scan(raw, env, quotes=True)


def expand(text: str, env: dict[str, str]) -> str:
    """Variables expanded, nothing else (the JSON forms of COPY and ADD)."""
    return _scan(text, env, quotes=False)


def _scan(raw: str, env: dict[str, str], quotes: bool) -> str:
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(raw):
        char = raw[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
            i += 1
        elif char == "\\" and i + 1 < len(raw):
            following = raw[i + 1]
            if (quote == '"' and following not in '$"\\`') or (not quotes and following != "$"):
                out.append(char)
            out.append(following)
            i += 2
        elif quotes and char == "'" and quote is None:
            quote = "'"
            i += 1
        elif quotes and char == '"':
            quote = None if quote == '"' else '"'
            i += 1
        elif char == "$":
            value, i = _dollar(raw, i, env)
            out.append(value)
        else:
            out.append(char)
            i += 1
    if quote:
        raise WordError(f"unterminated {quote} quote")
    return "".join(out)


def _dollar(raw: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """Expand the `$...` at raw[i]; return the value and the index after it."""
    if raw.startswith("${", i):
        depth, j = 1, i + 2
        while j < len(raw) and depth:
            if raw[j] == "}":
                depth -= 1
            elif raw[j] == "{" and raw[j - 1] == "$":
                depth += 1
            j += 1
        if depth:
            raise WordError(f"unterminated ${{ in {raw!r}")
        return _braced(raw[i + 2 : j - 1], env), j
    name = _NAME.match(raw, i + 1)
    if name is None:
        return "$", i + 1
    return env.get(name.group(), ""), name.end()


def _braced(inner: str, env: dict[str, str]) -> str:
    """The value of `${inner}`, with the :- :+ - + :? ? modifiers."""
    name = _NAME.match(inner)
    if name is None:
        raise WordError(f"bad substitution ${{{inner}}}")
    key, rest = name.group(), inner[name.end() :]
    if not rest:
        return env.get(key, "")
    modifier = re.match(r":?[-+?]", rest)
    if modifier is None:
        raise WordError(f"unsupported substitution ${{{inner}}}")
    op, word = modifier.group(), rest[modifier.end() :]
    is_set = key in env and (env[key] != "" or not op.startswith(":"))
    if op.endswith("-"):
        return env[key] if is_set else process_word(word, env)
    if op.endswith("+"):
        return process_word(word, env) if is_set else ""
    if not is_set:
        raise WordError(f"{key}: {process_word(word, env) or 'is not set'}")
    return env[key]


def split_instructions(text: str) -> list[Instruction]:
    """Instructions with continuations joined; comments, blank lines and directives dropped."""
    lines = text.splitlines()
    index = _skip_directives(lines)
    found: list[Instruction] = []
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start, parts, current = index + 1, [], lines[index]
        while True:
            index += 1
            continued = re.search(r"\\[ \t]*$", current)
            if not continued:
                parts.append(current)
                break
            parts.append(current[: continued.start()])
            while index < len(lines) and (
                not lines[index].strip() or lines[index].lstrip().startswith("#")
            ):
                index += 1
            if index >= len(lines):
                break
            current = lines[index]
        keyword, _, rest = "".join(parts).strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = f"{more} {rest}".strip()
        instruction = Instruction(start, keyword, rest)
        if keyword in ("RUN", "COPY", "ADD") and re.search(r"<<-?\s*['\"]?[A-Za-z_]", rest):
            raise DockerfileError(
                start,
                instruction.source,
                "heredocs (<<EOF) are not supported by the process runtime: put the content "
                "in a file of the build context and COPY it.",
            )
        found.append(instruction)
    return found


def _skip_directives(lines: list[str]) -> int:
    """Index of the first line after the parser directives (`# syntax=`, `# escape=`)."""
    for index, line in enumerate(lines):
        directive = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", line)
        if not directive:
            return index
        if directive.group(1).lower() == "escape" and directive.group(2) != "\\":
            raise DockerfileError(
                index + 1, line.strip(), "only the default escape character (\\) is supported."
            )
    return len(lines)


def json_form(text: str) -> list[str] | None:
    """The exec (JSON) form of an argument, or None when it is the shell form."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None
