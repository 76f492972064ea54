"""Consumer processes in a sandbox, with resource limits (a model is a program: its ops read,
write, connect, allocate and loop as they like).

* **Sandbox** (bubblewrap, ``bwrap``; unprivileged, through user namespaces): no network
  (``--unshare-all``: a loopback of its own), its own PID/IPC/UTS namespaces, no capabilities,
  no nested user namespaces, killed with the harness (``--die-with-parent``), a session of its
  own (``--new-session``: no terminal injection). The file system is an allow-list on an empty,
  read-only root: the system directories, the Python environment and this package, the
  TensorFlow wheel, the consumer's program, ``LD_LIBRARY_PATH`` (a bound runtime), the plan's
  model and inputs read-only; the run directory and the plan's output directories read-write;
  a private, size-capped ``/tmp``, ``/dev/shm`` and ``$HOME``. Anything else (the rest of the
  home directory, other projects, credentials) does not exist inside. The environment is
  reduced to what a run needs (``/proc/self/environ`` is readable inside).
* **Limits**, per consumer process, with or without the sandbox (``prlimit``):
  memory is ``RLIMIT_DATA``, not ``RLIMIT_AS``: measured on MobileNetV3, a TensorFlow process
  maps 1.1-1.5 GiB of address space (VmPeak; libtensorflow's own ~0.9 GB of file mappings,
  reservations) for 0.2-0.5 GiB of data (VmData), and ``import tensorflow`` under a 1 GiB
  ``RLIMIT_AS`` aborts, while a 1 GiB ``RLIMIT_DATA`` runs it and turns a 2 GiB ``Fill`` into
  TensorFlow's ``OOM when allocating tensor`` (since Linux 4.7 it counts every private
  writable mapping: heap, anonymous mmap, thread stacks). No cgroup: an ordinary user cannot
  make one without systemd's help (this machine has cgroup v1). CPU time is ``RLIMIT_CPU``
  (SIGXCPU; in the sandbox, where the consumer is its namespace's init and ignores it, the
  hard limit's SIGKILL with the CPU time used); output is ``RLIMIT_FSIZE`` per file (SIGXFSZ, or ``File too large`` where the
  signal is ignored, as in Python) plus the total size of the writable directories, watched
  while the process runs; the wall-clock timeout stays the pipeline's.

``confine`` turns a consumer command and its plan into the command to start; ``Confined.wait``
waits for it under the timeout and the output watch; ``Confined.explain`` names the limit a
failure hit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from .process import ProcessFailure

MIB = 1 << 20
DEFAULT_MEMORY_FRACTION = 0.25
"""Of physical RAM, per consumer process: ``check`` runs up to three at once (the reference
beside two others), so together they stay below the machine's memory."""
DEFAULT_OUTPUT_BYTES = 1 << 30
OUTPUT_POLL_S = 0.25
CPU_GRACE_S = 2
"""Hard CPU limit above the soft one: SIGKILL for a process that ignores SIGXCPU."""

SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
KEPT_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "USER", "LOGNAME")
KEPT_PREFIXES = ("LC_", "TF_", "OMP_", "KMP_", "MKL_", "TFINTEROP_", "PYTHON")
"""What a consumer process keeps of the harness's environment inside the sandbox (the run's
own settings are added on top); tokens and keys in the environment stay outside."""
DROPPED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")

_ALLOCATION_FAILURE = re.compile(
    r"OOM when allocating|RESOURCE_EXHAUSTED|ResourceExhausted|bad_alloc|MemoryError|"
    r"Cannot allocate memory|[Oo]ut of memory|failed to allocate",
)
_FILE_TOO_LARGE = re.compile(r"File too large|EFBIG")


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_bytes() -> int:
    return int(physical_memory() * DEFAULT_MEMORY_FRACTION)


def mib(size: int) -> str:
    return f"{size / MIB:g} MiB" if size % MIB == 0 else f"{size / MIB:.1f} MiB"


@dataclass(frozen=True)
class Limits:
    """Per consumer process; None: not limited."""

    memory_bytes: int | None = None
    cpu_s: int | None = None
    output_bytes: int | None = None

    @classmethod
    def defaults(cls) -> Limits:
        return cls(default_memory_bytes(), None, DEFAULT_OUTPUT_BYTES)

    def any(self) -> bool:
        return any(v is not None for v in (self.memory_bytes, self.cpu_s, self.output_bytes))

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mib": None if self.memory_bytes is None else round(self.memory_bytes / MIB),
            "cpu_s": self.cpu_s,
            "output_mib": None if self.output_bytes is None else round(self.output_bytes / MIB),
        }

    def memory_text(self) -> str:
        assert self.memory_bytes is not None
        return f"memory limit {mib(self.memory_bytes)} (--memory-limit)"

    def cpu_text(self) -> str:
        return f"CPU time limit {self.cpu_s} s (--cpu-limit)"

    def output_text(self) -> str:
        assert self.output_bytes is not None
        return f"output size limit {mib(self.output_bytes)} (--output-limit)"


@dataclass(frozen=True)
class SandboxPolicy:
    """What a run asks for: consumers sandboxed or not, and their limits."""

    enabled: bool = False
    limits: Limits = field(default_factory=Limits)

    def as_dict(self) -> dict[str, Any]:
        tool = probe().tool if self.enabled else None
        return {
            "enabled": self.enabled,
            "tool": f"{tool.name} {tool.version}" if tool else None,
            "limits": self.limits.as_dict(),
        }


@dataclass(frozen=True)
class SandboxTool:
    name: str
    path: str
    version: str


@dataclass(frozen=True)
class Probe:
    tool: SandboxTool | None
    problem: str | None
    """Why no sandbox can be made here (None when ``tool`` works)."""


def system_arguments() -> list[str]:
    """The read-only system directories (merged-/usr symlinks kept as symlinks)."""
    arguments: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    return arguments


@cache
def probe() -> Probe:
    """Whether bubblewrap can make a sandbox here (once per process): installed, and allowed
    the user namespaces it needs (some kernels or containers refuse them)."""
    path = shutil.which("bwrap")
    if path is None:
        return Probe(
            None, "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        )
    true = shutil.which("true") or "/bin/true"
    try:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        done = subprocess.run(
            [path, *_isolation(), *system_arguments(), "--proc", "/proc", "--dev", "/dev",
             "--", true],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(None, f"{path} cannot run: {exc}")
    if done.returncode != 0:
        why = " | ".join(done.stderr.strip().splitlines()[-2:]) or f"exit status {done.returncode}"
        return Probe(None, f"{path} cannot create a sandbox here (user namespaces refused?): {why}")
    name, _, number = version.partition(" ")
    return Probe(SandboxTool(name or "bubblewrap", path, number or version), None)


def unavailable() -> str | None:
    """Why consumers cannot be sandboxed on this machine, or None."""
    return probe().problem


def _isolation() -> list[str]:
    # --as-pid-1: the consumer itself is the PID namespace's init, reaped by bwrap, so its CPU
    # time reaches our wait4 (with bwrap's own init between, nobody reaps it and the time is
    # lost: 0.0 s measured for a 2 s busy loop). An init ignores signals it has no handler
    # for (SIGXCPU, SIGXFSZ): the CPU limit ends in the hard limit's SIGKILL, named from the
    # CPU time; an oversize write fails with "File too large".
    return [
        "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
        "--as-pid-1", "--die-with-parent", "--new-session",
    ]  # fmt: skip


def _package_dirs() -> list[str]:
    """The Python environment, its base interpreter, this package and the TensorFlow wheel:
    what every consumer loads (the native ones link the wheel's C API)."""
    from .tfenv import find_tensorflow

    package = Path(__file__).resolve().parent
    dirs = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, str(package)}
    try:
        tf = find_tensorflow()
        dirs |= {tf.library_dir, tf.package_dir}
    except Exception:
        pass
    return sorted(dirs)


def _program_paths(command: list[str]) -> list[str]:
    """The program (as called and resolved: a venv's bin/ links elsewhere) and any absolute
    path among its arguments (a script)."""
    paths: list[str] = []
    program = command[0] if os.path.isabs(command[0]) else shutil.which(command[0])
    if program:
        paths += [os.path.dirname(program), os.path.dirname(os.path.realpath(program))]
    paths += [a for a in command[1:] if os.path.isabs(a) and os.path.exists(a)]
    return paths


def _environment(environment: dict[str, str], home: str | None) -> dict[str, str]:
    kept = {
        k: v
        for k, v in environment.items()
        if (k in KEPT_VARIABLES or k.startswith(KEPT_PREFIXES)) and k not in DROPPED_VARIABLES
    }
    if "LD_LIBRARY_PATH" in environment:
        kept["LD_LIBRARY_PATH"] = environment["LD_LIBRARY_PATH"]
    kept["TMPDIR"] = "/tmp"
    if home:
        kept["HOME"] = home
    return kept


def _binds(readable: Iterable[str], writable: Iterable[str]) -> list[str]:
    """``--ro-bind``/``--bind`` arguments, parents before children (a read-only model under a
    writable run directory stays read-only, and the other way round)."""
    modes: dict[str, str] = {}
    for path in readable:
        modes.setdefault(os.path.abspath(path), "--ro-bind-try")
    for path in writable:
        modes[os.path.abspath(path)] = "--bind"
    arguments: list[str] = []
    for path in sorted(modes, key=lambda p: (p.count("/"), p)):
        arguments += [modes[path], path, path]
    return arguments


@dataclass
class Confined:
    """A consumer command as it will be started: the sandbox and limits around it."""

    command: list[str]
    environment: dict[str, str]
    policy: SandboxPolicy
    sandboxed: bool
    watched: list[Path] = field(default_factory=list)
    stopped: str | None = None
    """The limit the watch stopped the process at (output size), if it did."""
    cpu_s: float | None = None
    """CPU time the process (and what it waited for) used, once it ended."""

    def record(self) -> dict[str, Any]:
        """For the consumer's info in the report."""
        return {"sandboxed": self.sandboxed, "limits": self.policy.limits.as_dict()}

    def wait(self, process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, bool]:
        """Wait (killing the process group at the timeout or beyond the output size);
        returns the exit status (a signal as -N, also through bwrap's 128+N) and whether it
        timed out. The end is seen at once (a blocking wait); a watcher thread enforces the
        timeout and the output size, so neither adds polling latency to every process."""
        limit = self.policy.limits.output_bytes
        deadline = time.monotonic() + timeout_s
        ended = threading.Event()
        timed_out = False

        def watch() -> None:
            nonlocal timed_out
            while True:
                remaining = deadline - time.monotonic()
                if ended.wait(max(0.0, min(remaining, OUTPUT_POLL_S) if limit else remaining)):
                    return
                if time.monotonic() >= deadline:
                    timed_out = True
                elif limit and _total_size(self.watched) > limit:
                    self.stopped = self.policy.limits.output_text()
                else:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return

        watcher = threading.Thread(target=watch, name="consumer-watch", daemon=True)
        watcher.start()
        try:
            # wait4, not Popen.wait: the CPU time too (a SIGKILL at the CPU limit's hard
            # value is told apart from any other SIGKILL by it).
            _, status, usage = os.wait4(process.pid, 0)
            returncode = process.returncode = os.waitstatus_to_exitcode(status)
            self.cpu_s = usage.ru_utime + usage.ru_stime
        finally:
            ended.set()
            watcher.join()
        if timed_out:
            return returncode, True
        if self.sandboxed and returncode > 128:  # bwrap exits 128+N for a child killed by N
            try:
                return -signal.Signals(returncode - 128).value, False
            except ValueError:
                pass
        return returncode, False

    def explain(
        self, returncode: int | None, stderr_tail: str, *, jobs_reported: bool = False
    ) -> str | None:
        """The limit a process failure hit, named, or None."""
        limits = self.policy.limits
        if self.stopped:
            return self.stopped
        if returncode in (0, None) or (returncode == 1 and jobs_reported):
            return None  # ended on its own; failed jobs say why (explain_job)
        if limits.cpu_s is not None and (
            returncode == -signal.SIGXCPU
            or (returncode == -signal.SIGKILL and (self.cpu_s or 0.0) >= limits.cpu_s)
        ):
            return limits.cpu_text()
        if returncode == -signal.SIGXFSZ and limits.output_bytes is not None:
            return limits.output_text()
        if limits.memory_bytes is not None and _ALLOCATION_FAILURE.search(stderr_tail):
            return limits.memory_text()
        if limits.output_bytes is not None and _FILE_TOO_LARGE.search(stderr_tail):
            return limits.output_text()
        return None

    def explain_job(self, error: str | None) -> str | None:
        """The limit a failed job's error shows it hit (the process went on), or None."""
        limits = self.policy.limits
        if not error:
            return None
        if limits.memory_bytes is not None and _ALLOCATION_FAILURE.search(error):
            return limits.memory_text()
        if limits.output_bytes is not None and _FILE_TOO_LARGE.search(error):
            return limits.output_text()
        return None


@dataclass
class LimitFailure(ProcessFailure):
    """A process failure that hit a resource limit: the limit comes first in the row."""

    limit: str = ""

    def describe(self) -> str:
        return f"stopped at the {self.limit}: {super().describe()}"


def _total_size(paths: list[Path]) -> int:
    total = 0
    for root in paths:
        for directory, _, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_size
                except OSError:
                    pass
    return total


def _limit_arguments(limits: Limits) -> list[str]:
    arguments: list[str] = []
    if limits.memory_bytes is not None:
        arguments.append(f"--data={limits.memory_bytes}:{limits.memory_bytes}")
    if limits.cpu_s is not None:
        arguments.append(f"--cpu={limits.cpu_s}:{limits.cpu_s + CPU_GRACE_S}")
    if limits.output_bytes is not None:
        arguments.append(f"--fsize={limits.output_bytes}:{limits.output_bytes}")
    return arguments


_SHIM = (
    "import os,resource as r,sys\n"
    "n=int(sys.argv[1]);a=sys.argv[2:2+3*n];c=sys.argv[2+3*n:]\n"
    "for i in range(n):r.setrlimit(getattr(r,a[3*i]),(int(a[3*i+1]),int(a[3*i+2])))\n"
    "os.execvp(c[0],c)"
)


def _limiter(limits: Limits) -> list[str]:
    """The prefix that applies ``limits`` to what it runs: util-linux ``prlimit`` (an exec
    of ~1 ms; not ``preexec_fn``, unsafe in the harness's threads), else a Python shim."""
    arguments = _limit_arguments(limits)
    if not arguments:
        return []
    prlimit = shutil.which("prlimit")
    if prlimit:
        return [prlimit, *arguments, "--"]
    names = {"--data": "RLIMIT_DATA", "--cpu": "RLIMIT_CPU", "--fsize": "RLIMIT_FSIZE"}
    shim: list[str] = []
    for argument in arguments:
        option, _, values = argument.partition("=")
        soft, _, hard = values.partition(":")
        shim += [names[option], soft, hard]
    return [sys.executable, "-c", _SHIM, str(len(arguments)), *shim]


def confine(
    command: list[str],
    policy: SandboxPolicy,
    *,
    environment: dict[str, str],
    work_dir: Path,
    readable: Iterable[str] = (),
    writable: Iterable[str] = (),
) -> Confined:
    """``command`` (with its full environment) as ``policy`` starts it: under the limits,
    and in the sandbox when it is enabled, seeing ``readable`` (the model, the inputs)
    read-only and ``work_dir`` and ``writable`` (output directories) read-write."""
    limiter = _limiter(policy.limits)
    watched = [work_dir, *map(Path, writable)]
    if not policy.enabled:
        return Confined([*limiter, *command], environment, policy, False, watched)
    tool = probe().tool
    if tool is None:  # the CLI refuses first; an API caller gets the reason
        raise RuntimeError(f"no sandbox: {probe().problem}")
    for path in watched:
        path.mkdir(parents=True, exist_ok=True)
    home = environment.get("HOME")
    if (
        not home
        or not os.path.isabs(home)
        or any(d.startswith(home.rstrip("/") + "/") or d == home for d in ("/", *SYSTEM_DIRS))
    ):
        home = None
    size = str(policy.limits.output_bytes or DEFAULT_OUTPUT_BYTES)
    cwd = os.getcwd()
    ld_paths = [p for p in environment.get("LD_LIBRARY_PATH", "").split(":") if p]
    arguments = [
        tool.path, *_isolation(), *system_arguments(),
        "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu",
        "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev", "--size", size, "--tmpfs", "/tmp",
        *(["--size", size, "--tmpfs", home] if home else []),
        "--dir", cwd,
        *_binds(
            [*_package_dirs(), *_program_paths(command), *ld_paths, *readable],
            [str(p) for p in watched],
        ),
        "--remount-ro", "/", "--chdir", cwd, "--",
    ]  # fmt: skip
    return Confined(
        [*limiter, *arguments, *command], _environment(environment, home), policy, True, watched
    )


def plan_paths(jobs: Iterable[Any]) -> tuple[list[str], list[str]]:
    """What a plan's jobs read (each model, each input's directory) and write (each
    output's directory)."""
    readable: list[str] = []
    writable: list[str] = []
    for job in jobs:
        readable.append(job.model)
        readable += [os.path.dirname(os.path.abspath(t.file)) for t in job.inputs]
        writable += [os.path.dirname(os.path.abspath(t.file)) for t in job.outputs]
    return sorted(set(readable)), sorted(set(writable))


def with_limit(error: str, limit: str) -> str:
    return f"stopped at the {limit}: {error}"


def annotate_jobs(jobs: dict[str, Any], confined: Confined) -> None:
    """Failed jobs whose error shows a limit (TensorFlow's OOM under the memory limit, a
    write refused beyond the output size) say so first."""
    for key, job in jobs.items():
        if job.status == "ok":
            continue
        limit = confined.explain_job(job.error)
        if limit:
            jobs[key] = replace(job, error=with_limit(job.error or "", limit))
