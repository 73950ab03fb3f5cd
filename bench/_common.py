"""Helpers shared by the bench scripts: machine info, result files, child processes with peak memory."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SPECDM = str(VENV_BIN / "specdm")
ACCELERATE = str(VENV_BIN / "accelerate")


def command_line() -> str:
    return shlex.join([Path(sys.executable).relative_to(REPO).as_posix() if sys.executable.startswith(str(REPO)) else sys.executable,
                       *sys.argv])


def machine_info() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import diffusers, accelerate  # noqa: E401

        info["diffusers"], info["accelerate"] = diffusers.__version__, accelerate.__version__
    except ImportError:
        pass
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["cpu_model"] = model
    except (OSError, StopIteration):
        pass
    return info


def other_load() -> dict:
    """CPU use of processes that are not this one or its children (background work that skews timings)."""
    me = psutil.Process()
    mine = {me.pid, *(c.pid for c in me.children(recursive=True))}
    busy = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        if p.info["pid"] in mine:
            continue
        busy.append(p)
    for p in busy:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(1.0)
    out = []
    for p in busy:
        try:
            c = p.cpu_percent(None)
        except psutil.Error:
            continue
        if c >= 10:
            out.append({"pid": p.pid, "cpu_percent": round(c), "cmd": " ".join(p.info["cmdline"] or [p.info["name"]])[:120]})
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "busy_processes": out}


def write_results(out_dir: Path, name: str, result: dict, markdown: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j, m = out_dir / f"{name}.json", out_dir / f"{name}.md"
    j.write_text(json.dumps(result, indent=2, default=float))
    m.write_text(markdown)
    return j, m


def finish(out_dir: Path, name: str, result: dict, t0: float, markdown, stamped=None, also=()) -> int:
    """Stamp wall time and end load on ``result``, write ``name``.json/.md, print the summary.

    ``stamped(result)`` may add what depends on the wall time before writing; ``also``: further output paths to print.
    """
    result["wall_time_s"] = time.time() - t0
    result["background_at_end"] = other_load()
    if stamped is not None:
        stamped(result)
    md = markdown(result)
    j, m = write_results(out_dir, name, result, md)
    print()
    print(md)
    print("results: " + "\n         ".join(str(p) for p in (j, m, *also)))
    return 0


def header_md(title: str, result: dict) -> list[str]:
    mi = result["machine"]
    return [
        f"# {title}",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"- wall time: {result['wall_time_s']:.0f} s",
        f"- machine: {mi.get('cpu_model', mi['processor'])}, {mi['cpu_count']} CPUs, {mi['memory_gb']} GB RAM, "
        f"{mi['platform']}, Python {mi['python']}, torch {mi['torch']} ({mi['torch_threads']} threads)"
        + (f", diffusers {mi['diffusers']}, accelerate {mi['accelerate']}" if "diffusers" in mi else ""),
        f"- load average at start {mi['loadavg_at_start']}; other busy processes at start: "
        + (", ".join(f"{p['cpu_percent']}% `{p['cmd'][:60]}`" for p in result.get("background", {}).get("busy_processes", []))
           or "none"),
        "",
    ]


PROGRESS = re.compile(r"(\d+)/(\d+) \[")


class Child:
    """A child process with peak memory: ``ru_maxrss`` of the child itself (os.wait4) and the peak of the
    summed RSS over its whole process tree (psutil polling every ``poll`` seconds). stderr is read by a
    thread that timestamps tqdm progress (``k/n [``) so steady-state step rates can be computed."""

    def __init__(self, cmd: list[str], env: dict | None = None, cwd=None, poll: float = 0.2, log: Path | None = None):
        self.cmd = cmd
        self.t0 = time.time()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.progress: list[tuple[float, str, int, int]] = []  # (t, bar description, k, n)
        self.err_tail: list[str] = []
        self.out = ""
        self.peak_tree_rss = 0
        self.peak_procs = 0
        self.rss_trace: list[tuple[float, int]] = []
        self._done = False
        self._log = open(log, "w") if log else None
        self._threads = [threading.Thread(target=self._read_err, daemon=True), threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._poll, args=(poll,), daemon=True)]
        for t in self._threads:
            t.start()

    def _read_out(self):
        chunks = []
        fd = self.proc.stdout.fileno()
        while data := os.read(fd, 65536):
            chunks.append(data)
        self.out = b"".join(chunks).decode(errors="replace")

    def _read_err(self):
        """Timestamp each progress line as its bytes arrive (raw os.read: no buffering on this side)."""
        fd = self.proc.stderr.fileno()
        buf = ""
        while data := os.read(fd, 65536):
            now = time.time() - self.t0
            buf += data.decode(errors="replace")
            *lines, buf = re.split(r"[\r\n]", buf)
            for line in lines:
                if not line:
                    continue
                if self._log:
                    self._log.write(f"{now:9.2f} {line}\n")
                m = PROGRESS.search(line)
                if m:
                    self.progress.append((now, line.split(":")[0].strip(), int(m.group(1)), int(m.group(2))))
                else:
                    self.err_tail = (self.err_tail + [line])[-40:]

    def _poll(self, every: float):
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.Error:
            return
        while not self._done:
            try:
                procs = [root, *root.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_tree_rss = max(self.peak_tree_rss, rss)
                self.peak_procs = max(self.peak_procs, len(procs))
                self.rss_trace.append((round(time.time() - self.t0, 2), rss))
            except psutil.Error:
                break
            time.sleep(every)

    def send(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> dict:
        pid, status, ru = os.wait4(self.proc.pid, 0)
        self._done = True
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        for t in self._threads[:2]:
            t.join(timeout=10)
        if self._log:
            self._log.close()
        return {
            "returncode": self.proc.returncode,
            "wall_s": round(time.time() - self.t0, 2),
            "user_cpu_s": round(ru.ru_utime, 1),
            "sys_cpu_s": round(ru.ru_stime, 1),
            # ru_maxrss of the waited-for process and its waited-for descendants (the largest single one), KiB on Linux
            "peak_rss_mb_maxrss": round(ru.ru_maxrss / 1024, 1),
            "peak_rss_mb_tree_polled": round(self.peak_tree_rss / 2**20, 1),
            "processes": self.peak_procs,
        }

    def step_rate(self, desc_prefix: str, skip: int = 3, before_end: bool = False) -> dict | None:
        """Steady-state seconds per unit of the progress bar whose description starts with ``desc_prefix``,
        from the first time its count reached ``skip`` to its last update (``before_end``: to the last update
        before the bar reached its total, e.g. to leave out a final checkpoint written inside the last step)."""
        pts = [(t, k, n) for t, d, k, n in self.progress if d.startswith(desc_prefix)]
        if before_end:
            pts = [(t, k, n) for t, k, n in pts if k < n]
        if not pts:
            return None
        first = {}
        for t, k, n in pts:
            first.setdefault(k, t)
        ks = sorted(first)
        k_end = ks[-1]
        k0 = next((k for k in ks if k >= skip), ks[0])
        if k_end <= k0:
            return None
        dt = first[k_end] - first[k0]
        return {"from": k0, "to": k_end, "total": pts[-1][2], "seconds": round(dt, 2),
                "s_per_step": dt / (k_end - k0), "steps_per_s": (k_end - k0) / dt if dt > 0 else None,
                "first_update_s": round(first[ks[0]], 2)}
