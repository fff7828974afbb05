"""Read the container files without docker: a small Dockerfile parser, a .dockerignore
matcher with Docker's rules, and compose.yaml loaded as data."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    value: str  # the rest, continuation lines joined
    line: int  # where it starts, 1-based


@dataclass
class Stage:
    image: str  # global ARG defaults substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """Every ENV of the stage, in order (``ENV A=1 B=2`` form; values unexpanded)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.value):
                name, sep, value = word.partition("=")
                assert sep, f"line {instruction.line}: use ENV NAME=value, not {word!r}"
                values[name] = value
        return values

    def workdir_at(self, instruction: Instruction) -> str:
        """The working directory an instruction runs in (absolute WORKDIRs only)."""
        workdir = "/"
        for earlier in self.instructions:
            if earlier is instruction:
                break
            if earlier.keyword == "WORKDIR":
                assert earlier.value.startswith("/"), f"line {earlier.line}: relative WORKDIR"
                workdir = earlier.value
        return workdir


@dataclass(frozen=True)
class Copy:
    instruction: Instruction
    options: dict[str, str]  # --from=build -> {"from": "build"}
    sources: list[str]
    dest: str


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text): comments dropped, continuations joined."""
    lines: list[tuple[int, str]] = []
    pending: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue  # comments and blank lines, even inside a continuation, as Docker does
        if pending is None:
            start, pending = number, ""
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1]
            continue
        lines.append((start, pending + raw))
        pending = None
    assert pending is None, "the Dockerfile ends inside a continuation line"
    return lines


def substitute(text: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by the ARG defaults (unknown names left alone)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def parse_dockerfile(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, value = line.strip().partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = value.split()
            words = [w for w in words if not w.startswith("--")]  # --platform=...
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {number}: FROM image [AS name]"
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may come before the first FROM"
            arg, _, default = value.partition("=")
            global_args[arg] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, value, number))
    return stages


def exec_form(value: str) -> list[str] | None:
    """The JSON array of an exec-form RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
    if not value.startswith("["):
        return None
    words = json.loads(value)
    assert isinstance(words, list), value
    assert all(isinstance(word, str) for word in words), value
    return words


def options(value: str) -> tuple[dict[str, str], str]:
    """Leading ``--name=value`` options of an instruction, and what follows them."""
    found: dict[str, str] = {}
    rest = value
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        name, _, option = word[2:].partition("=")
        found[name] = option
        rest = rest.lstrip()
    return found, rest


def copies(stage: Stage) -> list[Copy]:
    found: list[Copy] = []
    for instruction in stage.all("COPY") + stage.all("ADD"):
        flags, rest = options(instruction.value)
        words = exec_form(rest) or shlex.split(rest)
        assert len(words) >= 2, f"line {instruction.line}: COPY needs a source and a dest"
        found.append(Copy(instruction, flags, words[:-1], words[-1]))
    return found


def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def final_stage() -> Stage:
    return stages()[-1]


def build_stages() -> list[Stage]:
    """The stages the final one copies from (by name)."""
    names = {c.options["from"] for c in copies(final_stage()) if "from" in c.options}
    return [stage for stage in stages()[:-1] if stage.name in names]


def entry_command(stage: Stage) -> list[str]:
    """What the container runs: ENTRYPOINT (exec form) followed by CMD (exec form)."""
    words: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        instruction = stage.last(keyword)
        if instruction is not None:
            form = exec_form(instruction.value)
            assert form is not None, f"line {instruction.line}: use the exec form ([...])"
            words += form
    return words


def health_command(stage: Stage) -> tuple[dict[str, str], list[str]]:
    """The final HEALTHCHECK's options and its exec-form command (after CMD)."""
    instruction = stage.last("HEALTHCHECK")
    assert instruction is not None, "no HEALTHCHECK"
    flags, rest = options(instruction.value)
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"line {instruction.line}: HEALTHCHECK NONE or no CMD"
    form = exec_form(command.strip())
    assert form is not None, f"line {instruction.line}: use HEALTHCHECK CMD [...]"
    return flags, form


def console_scripts() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    scripts: dict[str, str] = project["scripts"]
    return scripts


# .dockerignore, with the rules of Docker's patternmatcher: patterns are paths relative to
# the context root ("/" at the start ignored), "*" and "?" do not cross "/", "**" matches
# any number of directories, a pattern matching a directory excludes everything in it, and
# the last pattern that matches decides ("!" re-includes).


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


class DockerIgnore:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line[1:].strip() if keep else line
            pattern = "/".join(p for p in pattern.strip("/").split("/") if p not in ("", "."))
            self.rules.append((keep, _pattern_regex(pattern)))

    @classmethod
    def of_project(cls) -> DockerIgnore:
        return cls(DOCKERIGNORE.read_text())

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, "/"-separated) is left out."""
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for keep, regex in self.rules:
            if any(regex.match(prefix) for prefix in prefixes):
                verdict = not keep
        return verdict

    def files(self, source: Path, context: Path) -> list[Path]:
        """The files under ``source`` (a file or directory of ``context``) sent to docker."""
        candidates = [source] if source.is_file() else sorted(source.rglob("*"))
        return [
            path
            for path in candidates
            if path.is_file() and not self.excluded(path.relative_to(context).as_posix())
        ]


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict), "compose.yaml is not a mapping"
    return document


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no service {name!r}"
    found: dict[str, Any] = services[name]
    return found


def service_env(name: str) -> dict[str, str]:
    """A service's environment, from either the mapping or the NAME=value list form."""
    env = service(name).get("environment", {})
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {name: value for name, _, value in pairs}
    return {key: str(value) for key, value in env.items()}
