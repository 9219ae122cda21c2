"""`pam-guard doctor [--root DIR]`: which PAM services run pam-guard, through which entry,
and every pam_python line a setuid program's service reaches (SPEC §7): there the caller's
PATH chooses the Python that runs as root. Exit 1 when one is found."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pam_guard.commands import EXIT_OK, EXIT_REFUSED, CommandError
from pam_guard.commands.common import print_json
from pam_guard.entries import exec_line, prefix_of_hook
from pam_guard.pamstacks import PamTree, StackLine
from pam_guard.setuid_programs import setuid_pam_programs

PAM_PYTHON = "pam_python.so"
EXEC_ENTRY = "pam-guard-exec"


def register(sub) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check this host's PAM stacks for pam-guard lines unsafe in setuid programs",
        description="List the PAM services that run pam-guard and through which entry; flag "
        "each pam_python line that a setuid program's service reaches (directly or "
        "through include, substack or @include), with the line to use instead. "
        "Exit 1 when one is found.",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        default="/",
        help="check the tree at DIR instead of this host (default /)",
    )
    parser.set_defaults(func=run)


def entry_of(line: StackLine) -> str | None:
    """'pam_python' or 'exec' for a line that runs pam-guard, else None."""
    if line.module_name == PAM_PYTHON and line.args and _is_pam_guard_hook(line.args[0]):
        return "pam_python"
    if line.module_name == "pam_exec.so" and any(
        os.path.basename(arg) == EXEC_ENTRY for arg in line.args
    ):
        return "exec"
    return None


def _is_pam_guard_hook(path: str) -> bool:
    return "pam-guard" in path or "pam_guard" in path


@dataclass(frozen=True)
class Unsafe:
    line: StackLine
    service: str
    program: str

    def use_instead(self) -> str:
        if not _is_pam_guard_hook(self.line.args[0] if self.line.args else ""):
            return "(another module's pam_python line: remove it from this stack)"
        hook, *args = self.line.args
        return exec_line(self.line.pam_type, self.line.control, args, prefix_of_hook(hook))

    def plain(self) -> dict:
        return {
            "file": self.line.file,
            "line": self.line.number,
            "text": self.line.text,
            "service": self.service,
            "program": self.program,
            "via": list(self.line.via),
            "use_instead": self.use_instead(),
        }


def examine(root: str) -> dict:
    """Everything doctor reports about the tree at `root`, as plain data."""
    tree = PamTree(root)
    if not os.path.isdir(tree.directory):
        raise CommandError(f"no PAM configuration: {tree.directory} is not a directory")
    stacks = {service: tree.stack(service) for service in tree.services()}
    guarded = []
    for service, lines in stacks.items():
        entries: dict[str, list[str]] = {}
        for line in lines:
            entry = entry_of(line)
            if entry:
                entries.setdefault(entry, []).append(f"{line.file}:{line.number}")
        for entry, places in sorted(entries.items()):
            guarded.append({"service": service, "entry": entry, "lines": places})
    programs = setuid_pam_programs(root, tree.has)
    unsafe: list[Unsafe] = []
    flagged = set()
    for program in programs:
        for service in program.services:
            for line in stacks[service]:
                key = (line.file, line.number, service)
                if line.module_name == PAM_PYTHON and key not in flagged:
                    flagged.add(key)
                    unsafe.append(Unsafe(line, service, program.path))
    return {
        "root": root,
        "services": guarded,
        "setuid_programs": [{"path": p.path, "services": list(p.services)} for p in programs],
        "unsafe": [u.plain() for u in unsafe],
        "safe": not unsafe,
    }


def run(args) -> int:
    report = examine(args.root)
    if args.json:
        print_json(report)
    else:
        print_report(report)
    return EXIT_OK if report["safe"] else EXIT_REFUSED


def print_report(report: dict) -> None:
    where = "" if report["root"] == "/" else f" (tree {report['root']})"
    print(f"PAM services running pam-guard{where}:")
    for row in report["services"]:
        print(f"  {row['service']:<20} {row['entry']:<11} {', '.join(row['lines'])}")
    if not report["services"]:
        print("  (none)")
    print("Setuid programs that run PAM, and their services:")
    for program in report["setuid_programs"]:
        print(f"  {program['path']:<40} {', '.join(program['services']) or '-'}")
    if not report["setuid_programs"]:
        print("  (none)")
    if report["safe"]:
        print("OK: no setuid program's stack runs pam_python.")
        return
    print(
        "UNSAFE: pam_python in a setuid program's stack runs the caller's Python as root "
        "(it takes its standard library from beside the first python3 on the caller's "
        "PATH). Use pam-guard's exec entry there:"
    )
    for item in report["unsafe"]:
        chain = "".join(f" via {f}" for f in reversed(item["via"]))
        print(
            f"  {item['file']}:{item['line']}: service {item['service']} "
            f"(program {item['program']}){chain}"
        )
        print(f"      {item['text']}")
        print(f"    use instead:\n      {item['use_instead']}")
    print(
        "  Complete stacks to copy: share/pam.d/pam-guard-su and pam-guard-sudo in "
        "pam-guard's prefix (refusals there jump to pam_deny)."
    )
