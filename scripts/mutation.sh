#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the pure core and the decision modules.
#
#   scripts/mutation.sh                      every group of [tool.qrgate.mutation] in pyproject
#   scripts/mutation.sh core                 one group (core, confirm, txsign)
#   scripts/mutation.sh src/qrgate/core/ocra.py qrgate.decisions   only these modules
#
# Each group runs in .mutation/<group>/ (src/ and tests/ linked, mutmut's own mutants/
# inside) against its tests only, on SQLite (QRGATE_TEST_DATABASE_URL unset), under `nice`.
# It prints, per module, killed / total and every mutant not killed as file:line and the
# mutation, labelled: "explained" (a `# mutation:` comment on its statement or right above
# it, or "# mutation: every mutant ..." above its function, says why it cannot or need not
# be killed), "equivalent" (equal on Python >= 3.11 whatever the code: "ascii"/"ASCII",
# from_bytes' default "big"), "message" / "error code" (only an error's text, or only the
# code of a refusal that still happens, changed), else its mutmut status ("survived",
# "no tests", "timeout"). Labels are for reading: the score counts killed mutants only.
# Exit status: 1 when a module scores below its minimum in pyproject, 2 when mutmut failed.
#
# Needs: pip install -e '.[test,mutation]'. Environment:
#   PYTHON              default .venv/bin/python
#   MUTATION_NICE       default 15
#   MUTATION_CHILDREN   mutants run at once, default 1
#   MUTATION_REPORT=1   only print the results of the last run (nothing is run)
#   MUTATION_RESUME=1   keep the results of the last run (an interrupted one, or one before
#                       new tests), run the mutants it did not reach, then try again those
#                       it did not kill that a new test could (not the explained,
#                       equivalent or message-only ones). Changing a group's test list
#                       makes mutmut start that group afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
unset QRGATE_TEST_DATABASE_URL
exec nice -n "${MUTATION_NICE:-15}" "$PYTHON" - "$@" <<'PY'
from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path.cwd()
WORK = ROOT / ".mutation"
MUTMUT = Path(sys.executable).with_name("mutmut")
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 36: "timeout", 37: "type check", -24: "timeout", 24: "timeout",
          152: "timeout", 255: "timeout", None: "not checked"}
KILLED = {"killed", "timeout", "type check"}
MARKER = "# mutation:"
WHOLE_FUNCTION = "every mutant"

config = tomllib.loads((ROOT / "pyproject.toml").read_text())
groups: dict[str, dict[str, Any]] = config["tool"]["qrgate"]["mutation"]["groups"]


def module_path(arg: str) -> str:
    """src/qrgate/core/ocra.py, qrgate.core.ocra or core/ocra, as src/qrgate/core/ocra.py."""
    text = arg.removesuffix(".py").removeprefix("src/").removeprefix("qrgate/")
    text = text.removeprefix("qrgate.").replace(".", "/")
    return f"src/qrgate/{text}.py"


def dotted(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


# --- what to run ------------------------------------------------------------------------
wanted: dict[str, list[str]] = {}  # group -> modules
for arg in sys.argv[1:] or list(groups):
    if arg in groups:
        wanted[arg] = list(groups[arg]["modules"])
        continue
    path = module_path(arg)
    owner = next((g for g, spec in groups.items() if path in spec["modules"]), None)
    if owner is None:
        sys.exit(f"mutation.sh: {arg} is neither a group ({', '.join(groups)}) nor a module "
                 "of one")
    wanted.setdefault(owner, [])
    if path not in wanted[owner]:
        wanted[owner].append(path)


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def prepare(group: str) -> Path:
    """.mutation/<group>/: links to src/ and tests/, and pyproject.toml with the group's
    [tool.mutmut] (mutmut reads its settings from the working directory only)."""
    spec = groups[group]
    workdir = WORK / group
    if workdir.exists() and os.environ.get("MUTATION_RESUME") != "1" and not REPORT_ONLY:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("src", "tests"):
        link = workdir / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    tests = [path for path in spec["tests"] if (ROOT / path).exists()]
    for path in sorted(set(spec["tests"]) - set(tests)):
        print(f"   note: {path} does not exist here and is left out")
    base = (ROOT / "pyproject.toml").read_text()
    base = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[)", "", base)
    mutmut = config["tool"]["mutmut"]
    (workdir / "pyproject.toml").write_text(
        base + "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(mutmut['source_paths'])}\n"
        f"only_mutate = {toml_list(list(spec['modules']))}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(mutmut['pytest_add_cli_args'])}\n"
    )
    return workdir


# --- reading mutmut's results ------------------------------------------------------------
def function_lines(source: str) -> dict[str, int]:
    """mutmut's mangled function name (x_func, xǁClassǁmethod) -> line of its ``def``."""
    lines: dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines[f"x\u01c1{node.name}\u01c1{item.name}"] = item.lineno
    return lines


def statement_spans(source: str) -> list[tuple[int, int]]:
    """(first, last) line of every statement, of a compound one only its header."""
    spans: list[tuple[int, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt):
            body = getattr(node, "body", None)
            last = body[0].lineno - 1 if isinstance(body, list) and body else node.end_lineno
            spans.append((node.lineno, max(node.lineno, last or node.lineno)))
    return spans


def function_spans(source: str) -> list[tuple[int, int]]:
    """(first line, decorators included, last line) of every function."""
    return [(min([node.lineno, *(d.lineno for d in node.decorator_list)]),
             node.end_lineno or node.lineno)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def comment_above(source_lines: list[str], first: int) -> str | None:
    """The `# mutation:` text in the comment lines right above line ``first``."""
    above = first - 2
    block: list[str] = []
    while above >= 0 and source_lines[above].lstrip().startswith("#"):
        block.insert(0, source_lines[above].strip().lstrip("#").strip())
        above -= 1
    joined = " ".join(block)
    marker = MARKER.lstrip("# ")
    return joined.split(marker, 1)[1].strip() if marker in joined else None


def explanation(source_lines: list[str], spans: list[tuple[int, int]],
                functions: list[tuple[int, int]], line: int) -> str | None:
    """The `# mutation:` comment on a line of the statement holding ``line``, in the
    comment lines right above that statement, or right above a function holding it when it
    begins "every mutant" (a comment above a def explains its own line only)."""
    around = [span for span in spans if span[0] <= line <= span[1]]
    first, last = min(around, key=lambda span: span[1] - span[0], default=(line, line))
    for text in source_lines[first - 1 : last]:
        if MARKER in text:
            return text.split(MARKER, 1)[1].strip()
    found = comment_above(source_lines, first)
    for start, _ in sorted((f for f in functions if f[0] <= line <= f[1]), reverse=True):
        whole = comment_above(source_lines, start)
        if found is None and whole is not None and whole.startswith(WHOLE_FUNCTION):
            found = whole
    return found


def from_def(lines: list[str]) -> list[str]:
    """A function's lines from its ``def`` on (a span may start with blank lines)."""
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("def ", "async def ")):
            # The generated copies differ in name only: diff them under one name.
            return [re.sub(r"def [^(]+\(", "def f(", line, count=1), *lines[index + 1 :]]
    return lines


def survivor_detail(key: str, *, spans: dict[str, list[int]], mutated: list[str],
                    defs: dict[str, int]) -> tuple[int, str]:
    """(line in the original file, "old -> new") for one mutant."""
    name = key.rsplit(".", 1)[1]
    function = name.rsplit("__mutmut_", 1)[0]
    orig_span, mutant_span = spans.get(f"{function}__mutmut_orig"), spans.get(name)
    if orig_span is None or mutant_span is None or function not in defs:
        return 0, "(no line information)"
    orig = from_def(mutated[orig_span[0] : orig_span[1]])
    mutant = from_def(mutated[mutant_span[0] : mutant_span[1]])
    matcher = difflib.SequenceMatcher(a=orig, b=mutant, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = " / ".join(line.strip() for line in orig[a0:a1]) or "(nothing)"
        new = " / ".join(line.strip() for line in mutant[b0:b1]) or "(line removed)"
        # Line 0 of a span is the def line, both here and in the original file.
        return defs[function] + a0, f"{old}  ->  {new}"
    return defs[function], "(no difference found)"


_STRING = re.compile(r"""[fb]?"(?:[^"\\]|\\.)*"|[fb]?'(?:[^'\\]|\\.)*'""")
_CODE_ARG = re.compile(r"code=([^,)]*)")


# Mutants that cannot change behaviour on Python >= 3.11, whatever the code around them:
# codec and hashlib names are case-insensitive, int.to_bytes/from_bytes default to "big",
# and typing.cast returns its argument.
_EQUIVALENT = (
    (re.compile(r'"ascii"'), '"ASCII"'),
    (re.compile(r'"sha(1|256|512)"'), r'"SHA\1"'),
    (re.compile(r'((?:to|from)_bytes\([^()]*?), "big"\)'), r"\1, )"),
    (re.compile(r"cast\([A-Za-z_.]+, "), "cast(None, "),
)


def category(change: str) -> str:
    """A hint for reading the list (never counted as killed): "equivalent" for the
    language-level equivalents above, "message" when a mutant changes only the
    human-readable detail of an error, "error code" when it changes only the code of a
    refusal that still happens."""
    old, _, new = (part.replace(" / ", " ") for part in change.partition("  ->  "))
    for pattern, replacement in _EQUIVALENT:
        if old != new and any(
            old[:m.start()] + m.expand(replacement) + old[m.end():] == new
            for m in pattern.finditer(old)
        ):
            return "equivalent"
    if not re.search(r"\braise\b|^\s*f?[\"']|^\s*code=", old):
        return ""

    def plain(text: str) -> str:
        text = _STRING.sub('""', _CODE_ARG.sub("", text))
        text = re.sub(r'\((?:"",?\s*|None,?\s*)', "(", text)
        return re.sub(r",\s*\)", ")", text)

    if plain(old) != plain(new):
        return ""
    return "message" if _CODE_ARG.findall(old) == _CODE_ARG.findall(new) else "error code"


def classify(workdir: Path, path: str) -> tuple[dict[str, str], list[tuple[int, str, str, str]]]:
    """Each mutant's mutmut status, and each one not killed as (line, change, key, label)."""
    codes: dict[str, int | None] = json.loads(
        (workdir / "mutants" / f"{path}.meta").read_text())["exit_code_by_key"]
    spans_file = workdir / "mutants" / f"{path}.spans"
    spans = json.loads(spans_file.read_text())["spans"] if spans_file.exists() else {}
    mutated = (workdir / "mutants" / path).read_text().splitlines()
    source = (ROOT / path).read_text()
    source_lines, defs = source.splitlines(), function_lines(source)
    statements, functions = statement_spans(source), function_spans(source)
    status = {key: STATUS.get(code, "suspicious") for key, code in codes.items()}
    survivors = []
    for (line, change), s, key in sorted(
            (survivor_detail(key, spans=spans, mutated=mutated, defs=defs), s, key)
            for key, s in status.items() if s not in KILLED):
        if line and explanation(source_lines, statements, functions, line) is not None:
            tag = "explained"
        else:
            tag = (category(change) if s == "survived" else "") or s
        survivors.append((line, change, key, tag))
    return status, survivors


def report(group: str, workdir: Path, modules: list[str]) -> list[str]:
    failures: list[str] = []
    for path in modules:
        if not (workdir / "mutants" / f"{path}.meta").exists():
            print(f"{path}: no results")
            failures.append(path)
            continue
        status, survivors = classify(workdir, path)
        total = len(status)
        killed = sum(1 for s in status.values() if s in KILLED)
        score = 100.0 * killed / total if total else 100.0
        minimum = float(groups[group]["modules"][path])
        tags = [tag for *_, tag in survivors]
        verdict = "ok" if score >= minimum else "BELOW MINIMUM"
        counts = ", ".join(f"{tags.count(t)} {t}" for t in sorted(set(tags)))
        print(f"{path}: {killed}/{total} killed, {score:.1f}% (minimum {minimum:.1f}%): "
              f"{verdict}" + (f"; not killed: {counts}" if tags else ""))
        for line, change, key, tag in survivors:
            print(f"  {tag:<10} {path}:{line}  {change}  [{key.rsplit('.', 1)[1]}]")
        if score < minimum:
            failures.append(path)
    return failures


# --- run ---------------------------------------------------------------------------------
def mutmut_run(group: str, workdir: Path, names: list[str]) -> None:
    with open(workdir / "mutmut.log", "a") as log:
        children = os.environ.get("MUTATION_CHILDREN", "1")
        run = subprocess.run([str(MUTMUT), "run", "--max-children", children, *names],
                             cwd=workdir, stdout=log, stderr=subprocess.STDOUT, check=False)
    if run.returncode != 0:
        tail = (workdir / "mutmut.log").read_text(errors="replace")[-3000:]
        print(tail.replace("\r", "\n"))
        print(f"mutation.sh: mutmut failed for group {group} (see {workdir}/mutmut.log)",
              file=sys.stderr)
        sys.exit(2)


# Labels no new test changes: retrying these would only pay their whole test run again.
SETTLED = {"explained", "equivalent", "message", "not checked"}


def worth_retrying(workdir: Path, modules: list[str]) -> list[str]:
    """Mutants an earlier run did not kill that a new test may kill (not the settled ones)."""
    keys: list[str] = []
    for path in modules:
        if (workdir / "mutants" / f"{path}.meta").exists():
            keys += [key for *_, key, tag in classify(workdir, path)[1] if tag not in SETTLED]
    return keys


REPORT_ONLY = os.environ.get("MUTATION_REPORT") == "1"
failures: list[str] = []
started = time.monotonic()
for group, modules in wanted.items():
    print(f"== {group}: {len(modules)} module(s) against {' '.join(groups[group]['tests'])}",
          flush=True)
    workdir = prepare(group)
    (workdir / "mutmut.log").write_text("")
    whole = modules == list(groups[group]["modules"])
    begin = time.monotonic()
    if REPORT_ONLY:
        failures += report(group, workdir, modules)
        continue
    # Only what earlier runs left alive is worth another try (tests may have changed
    # since); what this run leaves alive, it just tried against today's tests.
    earlier = set(worth_retrying(workdir, modules)) if os.environ.get(
        "MUTATION_RESUME") == "1" else set()
    mutmut_run(group, workdir, [] if whole else [f"{dotted(path)}.*" for path in modules])
    if survivors := sorted(earlier & set(worth_retrying(workdir, modules))):
        # Kept results stand for killed mutants; the others are tried again.
        print(f"   trying {len(survivors)} mutants again that earlier runs did not kill")
        mutmut_run(group, workdir, survivors)
    print(f"   ({(time.monotonic() - begin) / 60:.1f} min)")
    failures += report(group, workdir, modules)
print(f"== {len(wanted)} group(s) in {(time.monotonic() - started) / 60:.1f} min")
if failures:
    print("below their minimum: " + ", ".join(failures))
    sys.exit(1)
PY
