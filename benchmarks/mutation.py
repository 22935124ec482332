"""Mutation testing of the core: how many small, wrong changes to a module its tests catch.

A passing suite proves little if it also passes when the code is wrong (issue 14, item 10). For
each module this applies one mutation at a time, runs the chosen tests against it and counts the
mutant *killed* when they fail (or time out) and *survived* when they pass. Mutations:

- comparisons negated (``<`` ↔ ``>=``, ``==`` ↔ ``!=``, ``in`` ↔ ``not in``, ``is`` ↔ ``is not``);
- ``and`` ↔ ``or``;
- integer constants ± 1;
- ``True`` ↔ ``False``;
- ``return <value>`` → ``return None`` (not in functions annotated ``-> None``).

A mutant is written to the module's real path only while its tests run; the original bytes and
modification time are put back after each, in a ``finally`` that also runs on Ctrl-C and
SIGTERM, and a backup beside the file lets the next run restore it after a hard kill. The
mutant is made by ``ast.unparse``, so comments and layout differ but the meaning is the
original's except for the one change. It runs on a copy of the repository without ``.git``
(a git checkout is refused, so no mutant can be committed): ``--root`` is where the module and
tests are, and the tests import geochange from there (checked before anything is mutated).

    mkdir /tmp/mut && tar --exclude=./.venv --exclude=./.git -cf - . | tar -xf - -C /tmp/mut
    .venv/bin/python benchmarks/mutation.py --root /tmp/mut --max 40 --seed 0 \\
        --run geochange/events/base.py "tests/test_events.py"

``--run MODULE TESTS`` may be repeated; TESTS is a pytest argument line (``-k`` included). Up to
``--max`` of a module's mutants are drawn at random with ``--seed``.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SYMBOL: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
}
PYTEST = ["-x", "-q", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Mutant:
    """One change: the ``node``-th node of ``ast.walk`` order, changed in way ``variant``."""

    node: int
    variant: int
    line: int
    text: str


@dataclass
class Outcome:
    """The mutants of one module and what its tests made of each."""

    module: str
    tests: str
    killed: list[tuple[Mutant, str]]
    survived: list[Mutant]

    @property
    def tried(self) -> int:
        return len(self.killed) + len(self.survived)

    @property
    def share(self) -> float:
        return len(self.killed) / self.tried if self.tried else float("nan")


def _returns_none(tree: ast.Module) -> set[int]:
    """Ids of ``return`` nodes inside functions annotated ``-> None`` (nothing to replace)."""
    found: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            returns = func.returns
            if isinstance(returns, ast.Constant) and returns.value is None:
                found.update(id(n) for n in ast.walk(func) if isinstance(n, ast.Return))
    return found


def _annotation_nodes(tree: ast.Module) -> set[int]:
    """Ids of every node inside an annotation: types are not behaviour."""
    found: set[int] = set()
    for node in ast.walk(tree):
        notes: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            notes.append(node.returns)
        elif isinstance(node, ast.arg | ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                found.update(id(n) for n in ast.walk(note))
    return found


def _variants(node: ast.AST, skip_returns: set[int]) -> list[str]:
    """What mutations ``node`` takes, as text; the index in this list is the variant."""
    if isinstance(node, ast.Compare):
        return [f"`{SYMBOL[type(op)]}` → `{SYMBOL[NEGATED[type(op)]]}`" for op in node.ops]
    if isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        return [f"`{SYMBOL[type(node.op)]}` → `{SYMBOL[other]}`"]
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return [f"`{node.value}` → `{not node.value}`"]
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return [f"`{node.value}` → `{node.value + 1}`", f"`{node.value}` → `{node.value - 1}`"]
    if (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        and id(node) not in skip_returns
    ):
        return ["`return <value>` → `return None`"]
    return []


def _mutate(node: ast.AST, variant: int) -> None:
    """Change ``node`` in place as ``_variants`` describes its ``variant``."""
    if isinstance(node, ast.Compare):
        node.ops[variant] = NEGATED[type(node.ops[variant])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        node.value = not node.value
    elif isinstance(node, ast.Constant):
        node.value += 1 if variant == 0 else -1
    elif isinstance(node, ast.Return):
        node.value = ast.Constant(None)


def mutants(source: str) -> list[Mutant]:
    """Every mutant of a module's source, in ``ast.walk`` order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    skip = _annotation_nodes(tree)
    skip_returns = _returns_none(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for variant, text in enumerate(_variants(node, skip_returns)):
            line = getattr(node, "lineno", 0)
            code = lines[line - 1].strip() if line else ""
            found.append(Mutant(index, variant, line, f"{text} in `{code}`"))
    return found


def mutated_source(source: str, mutant: Mutant) -> str:
    """The module with ``mutant`` applied (re-parsed, so the walk order is the same)."""
    tree = ast.parse(source)
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == mutant.node)
    _mutate(node, mutant.variant)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


class Restoring:
    """Holds a module's original bytes and puts them back (file, mtime, stale bytecode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backup = path.with_name(f".{path.name}.mutation-backup")
        if self.backup.exists():
            # a run killed hard left a mutant: its backup is the original
            self.backup.replace(path)
            print(f"restored {path} from a backup left by a killed run", file=sys.stderr)
        self.original = path.read_bytes()
        self.stat = path.stat()

    def write(self, text: str) -> None:
        if not self.backup.exists():
            self.backup.write_bytes(self.original)
        self.path.write_text(text)
        self._forget_bytecode()

    def restore(self) -> None:
        self.path.write_bytes(self.original)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
        self._forget_bytecode()
        self.backup.unlink(missing_ok=True)

    def _forget_bytecode(self) -> None:
        for cached in (self.path.parent / "__pycache__").glob(f"{self.path.stem}.*.pyc"):
            cached.unlink(missing_ok=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run like Ctrl-C, so ``finally`` restores the module."""
    raise KeyboardInterrupt


def run_tests(root: Path, tests: str, timeout: float) -> tuple[bool, float]:
    """Whether the tests pass (False on failure or timeout) and how long they took."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *PYTEST, *shlex.split(tests)]
    tic = time.perf_counter()
    with subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as child:
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return code == 0, time.perf_counter() - tic


def check_import_root(root: Path) -> None:
    """The tests must import geochange from ``root``, not from an installed working tree."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    where = subprocess.run(
        [sys.executable, "-c", "import geochange; print(geochange.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(root.resolve()):
        sys.exit(f"geochange is imported from {where}, not from {root}: refusing to mutate")
    print(f"geochange imported from {where}")


def mutate_module(root: Path, module: str, tests: str, most: int, seed: int) -> Outcome:
    """Mutate ``module`` up to ``most`` times and run ``tests`` against each mutant."""
    path = root / module
    keeper = Restoring(path)
    source = keeper.original.decode()
    passed, baseline = run_tests(root, tests, timeout=3600)
    if not passed:
        sys.exit(f"{tests} fail on the unmutated {module}: fix them first")
    timeout = 3 * baseline + 10
    every = mutants(source)
    drawn = sorted(random.Random(seed).sample(every, min(most, len(every))), key=lambda m: m.line)
    print(f"{module}: {len(every)} mutants, {len(drawn)} drawn; tests {baseline:.1f} s")
    outcome = Outcome(module, tests, [], [])
    try:
        for number, mutant in enumerate(drawn, 1):
            keeper.write(mutated_source(source, mutant))
            passed, took = run_tests(root, tests, timeout)
            keeper.restore()
            verdict = "survived" if passed else "killed"
            if passed:
                outcome.survived.append(mutant)
            else:
                how = "timeout" if took >= timeout else "failed"
                outcome.killed.append((mutant, how))
                verdict += f" ({how})"
            print(f"  [{number}/{len(drawn)}] {path.name}:{mutant.line} {mutant.text}: {verdict}")
    finally:
        keeper.restore()
    return outcome


def report(outcomes: list[Outcome]) -> Iterator[str]:
    """A Markdown table of the figures, then every survivor."""
    yield "| module | tests | tried | killed | survived | kill share |"
    yield "|---|---|---|---|---|---|"
    for o in outcomes:
        yield (
            f"| `{o.module}` | `{o.tests}` | {o.tried} | {len(o.killed)} | {len(o.survived)} "
            f"| {o.share:.0%} |"
        )
    for o in outcomes:
        if o.survived:
            yield ""
            yield f"Survivors in `{o.module}`:"
            for m in o.survived:
                yield f"- `{Path(o.module).name}:{m.line}` {m.text}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a copy of the repository")
    parser.add_argument(
        "--run",
        nargs=2,
        action="append",
        required=True,
        metavar=("MODULE", "TESTS"),
        help="module path under --root and the pytest arguments that test it",
    )
    parser.add_argument("--max", type=int, default=40, help="most mutants per module")
    parser.add_argument("--seed", type=int, default=0, help="which mutants are drawn")
    args = parser.parse_args()
    root = args.root.resolve()
    if (root / ".git").exists():
        sys.exit(f"{root} is a git checkout: mutate a copy without .git (see --help)")
    signal.signal(signal.SIGTERM, _terminate)
    check_import_root(root)
    tic = time.perf_counter()
    try:
        outcomes = [mutate_module(root, m, t, args.max, args.seed) for m, t in args.run]
    except KeyboardInterrupt:
        sys.exit("interrupted; the module being mutated was restored")
    print(f"\n{time.perf_counter() - tic:.0f} s in all\n")
    print("\n".join(report(outcomes)))


if __name__ == "__main__":
    main()
