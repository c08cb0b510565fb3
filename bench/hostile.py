"""Time to reject each class of pathological input (issue 10), through the real ``kiln`` command.

    .venv/bin/python bench/hostile.py [--repeat 3]

For each class (an alias bomb, 100,000 nested brackets, a 1 MB requirements line, a 10 MB field,
a version too large for an integer column, 10,001 requirements...), writes the input into a temp
folder, runs ``kiln env register`` (or ``env show``) on it ``--repeat`` times against a fresh
workspace, checks that it fails with exit 1 and one line, and prints the median wall time, the
child's CPU time and its peak memory (``ru_maxrss``). The whole command is timed, Python's start
and Kiln's imports included (about 0.1-0.2 s of each figure): what a user waits for.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import KILN, kiln_env

MB = 1024 * 1024


def bomb(levels: int) -> str:
    lines = ["  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


V2 = "name: v\nimage: ubuntu:22.04\n"
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    ("v2 YAML, 9-level alias bomb in description (~600 bytes)",
     {"env.yml": V2 + "description:\n" + bomb(9)}, ["env", "register", "-d", "env.yml"]),
    ("conda file, 9-level alias bomb in dependencies",
     {"environment.yml": "name: c\ndependencies:\n" + bomb(9)}, ["env", "register", "-d", "environment.yml"]),
    ("v1 JSON, 100,000 nested brackets",
     {"d/azureml_environment.json": '{"name": "x", "r": ' + "[" * 100_000 + "]" * 100_000 + "}"},
     ["env", "register", "-d", "d"]),
    ("v2 YAML, 100,000 nested brackets",
     {"env.yml": V2 + "description: " + "[" * 100_000 + "]" * 100_000 + "\n"}, ["env", "register", "-d", "env.yml"]),
    ("requirements, one 1 MB line (spaces)",
     {"requirements.txt": "six" + " " * MB + "x\n"}, ["env", "register", "-d", "requirements.txt", "-n", "r"]),
    ("requirements, an 8,000-character line (under the limit, parsed)",
     {"requirements.txt": "six" + " " * 8000 + "#c\n"}, ["env", "register", "-d", "requirements.txt", "-n", "r"]),
    ("requirements, 10,001 packages",
     {"requirements.txt": "".join(f"pkg{i}\n" for i in range(10_001))},
     ["env", "register", "-d", "requirements.txt", "-n", "r"]),
    ("v1 JSON, 10 MB baseImage (file limit)",
     {"d/azureml_environment.json": '{"name": "x", "python": {}, "docker": {"baseImage": "' + "a" * (10 * MB) + '"}}'},
     ["env", "register", "-d", "d"]),
    ("v1 JSON, 1 MB baseImage (field limit)",
     {"d/azureml_environment.json": '{"name": "x", "python": {}, "docker": {"baseImage": "' + "a" * MB + '"}}'},
     ["env", "register", "-d", "d"]),
    ("v1 JSON, duplicate 'python' key",
     {"d/azureml_environment.json": '{"name": "x", "python": {}, "python": {"interpreterPath": "/bin/sh"}}'},
     ["env", "register", "-d", "d"]),
    ("NAME:99999999999999999999999", {}, ["env", "show", "x:99999999999999999999999"]),
    ("requirements, -e ./mypkg", {"requirements.txt": "-e ./mypkg\nsix\n"},
     ["env", "register", "-d", "requirements.txt", "-n", "r"]),
]


#: inputs that are accepted (a long line under the limit: parsing it must be linear too)
ACCEPTED = {"requirements, an 8,000-character line (under the limit, parsed)"}


def run(argv: list[str], env: dict[str, str], cwd: Path, *, ok: bool = False) -> tuple[float, float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([KILN, *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if ok:
        if proc.returncode != 0:
            raise SystemExit(f"{argv}: expected success, got {proc.returncode}: {proc.stderr[:500]}")
        return wall, cpu, after.ru_maxrss, proc.stdout.strip()
    if proc.returncode != 1 or proc.stderr.count("\n") != 1:
        raise SystemExit(f"{argv}: expected one error line and exit 1, got {proc.returncode}: {proc.stderr[:500]}")
    return wall, cpu, after.ru_maxrss, proc.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = kiln_env(root)
        ws = root / "ws"
        subprocess.run([KILN, "workspace", "create", "bench", "-d", str(ws), "--no-config"], env=env, cwd=root,
                       check=True, capture_output=True)
        env["KILN_WORKSPACE"] = str(ws)
        print(f"{'input':<62} {'wall (median)':>13} {'cpu':>7} {'peak RSS':>9}  message")
        for i, (label, files, argv) in enumerate(CASES):
            case = root / f"case{i}"
            for rel, text in files.items():
                (case / rel).parent.mkdir(parents=True, exist_ok=True)
                (case / rel).write_text(text, encoding="utf-8")
            case.mkdir(exist_ok=True)
            samples = [run(argv, env, case, ok=label in ACCEPTED) for _ in range(args.repeat)]
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            rss = max(s[2] for s in samples)  # ru_maxrss of children: the largest so far, in kB
            message = samples[0][3]
            print(f"{label:<62} {wall * 1000:>10.0f} ms {cpu * 1000:>4.0f} ms {rss / 1024:>6.0f} MB  "
                  f"{message[:90]}{'...' if len(message) > 90 else ''}")


if __name__ == "__main__":
    main()
