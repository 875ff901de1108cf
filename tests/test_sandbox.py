"""The sandboxes, driven directly with real processes (no manifold): isolation, sizes, cleanup.

Behaviour tests run against every sandbox that applies; isolation and size tests against
`linux` only (the `copy` sandbox shares the host's view and has no limits of its own).
"""
from __future__ import annotations

import os
import select
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from dynokernel.manifold.processes import exit_code

from dynokernel.manifold.sandbox import SANDBOXES, DynoSpec, Sandbox
from dynokernel.manifold.sandbox.limits import DynoCgroup, cgroup_parents, memory_usage

TIMEOUT = 20.0
PATH = "/usr/local/bin:/usr/bin:/bin"


def _sandbox_param(name: str):
    missing = not SANDBOXES[name].available()
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=f"no {name} sandbox here"))


BOTH = [_sandbox_param("linux"), _sandbox_param("copy")]
LINUX = [_sandbox_param("linux")]
needs_cgroups = pytest.mark.skipif(cgroup_parents() is None, reason="no cgroups we may create")


class Dyno:
    """A started dyno: its process, its stdio, helpers that wait for events with timeouts."""

    def __init__(self, sandbox: Sandbox, spec: DynoSpec, tty: bool) -> None:
        self.sandbox, self.spec, self.buffer = sandbox, spec, b""
        self.launch = sandbox.prepare(spec)
        if tty:
            master, slave = os.openpty()
            child, self.stdin, self.stdout = (slave, slave, slave), master, master
        else:
            in_r, self.stdin = os.pipe()
            self.stdout, out_w = os.pipe()
            child = (in_r, out_w, out_w)
        try:
            self.proc = sandbox.spawn(self.launch, *child, tty=tty)
        finally:
            for fd in set(child):
                os.close(fd)

    def send(self, text: str) -> None:
        os.write(self.stdin, text.encode())

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until `deadline`); False at end of output."""
        ready, _, _ = select.select([self.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no output in time; so far: {self.buffer.decode(errors='replace')!r}")
        try:
            data = os.read(self.stdout, 65536)
        except OSError:  # a pty whose other side has gone
            data = b""
        self.buffer += data
        return bool(data)

    def read_until(self, *texts: str, timeout: float = TIMEOUT) -> str:
        """Output up to and including the last of `texts` to appear (consumed)."""
        deadline = time.monotonic() + timeout
        wanted = [text.encode() for text in texts]
        while not all(text in self.buffer for text in wanted):
            if not self._read(deadline):
                raise EOFError(f"output ended before {texts!r}: {self.buffer.decode(errors='replace')!r}")
        end = max(self.buffer.index(text) + len(text) for text in wanted)
        head, self.buffer = self.buffer[:end], self.buffer[end:]
        return head.decode(errors="replace")

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Exit status and the rest of the output, once the dyno has ended."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        status = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        out, self.buffer = self.buffer.decode(errors="replace"), b""
        return status, out

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=TIMEOUT)
        for fd in {self.stdin, self.stdout}:
            os.close(fd)
        self.sandbox.cleanup(self.spec)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fake $DYNO_HOME with a token file, a database and a slug."""
    home = tmp_path / "home"
    slug = home / "slugs" / "slug1"
    (slug / "bin").mkdir(parents=True)
    (home / "token").write_text("TOKEN-SECRET-1234\n")
    (home / "state.db").write_text("DATABASE-SECRET\n")
    (slug / "Procfile").write_text("web: python -m http.server $PORT\n")
    (slug / "app.txt").write_text("hello from the slug\n")
    return home


@pytest.fixture
def start(home: Path):
    """start(sandbox_name, script, tty=False, **spec_fields) → a running Dyno, cleaned up after.

    The script runs with `bash -c` unless an `argv` is given among the spec's fields.
    """
    started: list[Dyno] = []

    def start(kind: str, script: str = "", tty: bool = False, **fields) -> Dyno:
        dyno_id = str(uuid.uuid4())
        fields.setdefault("name", f"run.{len(started) + 1}")
        fields.setdefault("argv", ["bash", "-c", script])
        spec = DynoSpec(dyno_id=dyno_id, slug_dir=home / "slugs" / "slug1", work_dir=home / "dynos" / dyno_id,
                        env={"PATH": PATH, "LANG": "C.UTF-8"}, **fields)
        dyno = Dyno(SANDBOXES[kind](home), spec, tty)
        started.append(dyno)
        return dyno

    yield start
    for dyno in started:
        dyno.close()


def run(start, kind: str, script: str = "", **fields) -> tuple[int, str, Dyno]:
    dyno = start(kind, script, **fields)
    status, out = dyno.finish()
    return status, out, dyno


# the seed's session -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BOTH)
def test_pwd_is_home_and_ls_shows_the_slug(start, kind):
    status, out, dyno = run(start, kind, 'pwd; echo "HOME=$HOME"; ls')
    assert status == 0, out
    lines = out.split()
    assert lines[0] == dyno.launch.home and lines[1] == f"HOME={dyno.launch.home}"
    assert {"Procfile", "app.txt", "bin"} <= set(lines[2:])
    if kind == "linux":
        assert dyno.launch.home == "/app"


@pytest.mark.parametrize("kind", BOTH)
def test_rm_procfile_leaves_the_slug_and_the_next_dyno_untouched(start, home, kind):
    status, out, _ = run(start, kind, "rm Procfile && ls")
    assert status == 0 and "Procfile" not in out
    assert (home / "slugs" / "slug1" / "Procfile").exists()
    status, out, _ = run(start, kind, "cat Procfile")
    assert status == 0 and "web: python" in out


@pytest.mark.parametrize("kind", BOTH)
def test_exit_status_is_the_commands(start, kind):
    assert run(start, kind, "echo bye; exit 3")[:2] == (3, "bye\n")


@pytest.mark.parametrize("kind", BOTH)
def test_writes_stay_in_the_dyno_dir_and_vanish_at_cleanup(start, home, kind):
    status, out, dyno = run(start, kind, "echo written > new.txt && mkdir -p a/b && chmod 000 a && echo ok")
    assert (status, out) == (0, "ok\n")
    assert [p.read_text() for p in dyno.spec.work_dir.rglob("new.txt")] == ["written\n"]
    assert not (home / "slugs" / "slug1" / "new.txt").exists()
    dyno.sandbox.cleanup(dyno.spec)
    dyno.sandbox.cleanup(dyno.spec)  # idempotent
    assert not dyno.spec.work_dir.exists()


# signals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_to_the_process_group_ends_the_dyno(start, kind, sig):
    dyno = start(kind, "sleep 300 & echo started; wait")
    dyno.read_until("started")
    os.killpg(dyno.proc.pid, sig)
    status, out = dyno.finish()
    assert exit_code(_wait_status(status)) == 128 + sig
    assert out.strip() == ""  # no "Terminated" or "Hangup" from a shell of the sandbox


@pytest.mark.parametrize("kind", BOTH)
def test_a_command_trapping_sigterm_lives_on_until_sigkill(start, kind):
    dyno = start(kind, "trap 'echo got TERM' TERM; echo started; while :; do sleep 0.05; done")
    dyno.read_until("started")
    dyno.sandbox.signal(dyno.proc.pid, signal.SIGTERM)
    dyno.read_until("got TERM")
    assert dyno.proc.poll() is None
    dyno.sandbox.signal(dyno.proc.pid, signal.SIGKILL)
    status, _ = dyno.finish()
    assert exit_code(_wait_status(status)) == 137


@pytest.mark.parametrize("kind", LINUX)
@needs_cgroups
def test_sigterm_reaches_processes_in_other_groups(start, kind):
    """With a cgroup, the sandbox's signal() reaches every process of the dyno, also in other groups."""
    child = "trap 'echo child got TERM' TERM; echo child-ready; while :; do sleep 0.05; done"
    dyno = start(kind, f"setsid sh -c \"{child}\" & trap '' TERM; echo main-ready; read line")
    dyno.read_until("child-ready", "main-ready")
    dyno.sandbox.signal(dyno.proc.pid, signal.SIGTERM)
    dyno.read_until("child got TERM")
    dyno.send("\n")
    assert dyno.finish()[0] == 0


def _wait_status(returncode: int) -> int:
    """Popen's returncode back as a wait status."""
    return -returncode if returncode < 0 else returncode << 8


# a terminal -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BOTH)
def test_tty_job_control_and_ctrl_c(start, kind):
    dyno = start(kind, "exec bash --norc -i", tty=True)
    dyno.send("PS1='$ '; tty >/dev/null && echo TTY-$((2+3))\n")
    dyno.read_until("TTY-5")
    dyno.send("sh -c 'echo IN-$((1+1)); exec sleep 300'\n")
    dyno.read_until("IN-2")
    dyno.send("\x03")
    dyno.send("echo after-$?-$((40+2))\n")
    dyno.read_until("after-130-42")
    dyno.send("sleep 300 & jobs %1 && echo JOB-$((1+1))\n")
    dyno.read_until("JOB-2")
    dyno.send("kill %1; exit 5\n")
    assert dyno.finish()[0] == 5


# isolation (linux) ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", LINUX)
def test_concurrent_dynos_see_neither_files_nor_processes_of_each_other(start, kind):
    first = start(kind, "echo mine > secret-one; sleep 300 & echo ready; read line")
    first.read_until("ready")
    upper = first.spec.work_dir
    status, out, second = run(start, kind, f"ls /app; ls {upper} 2>&1; echo ---; ps -eo pid,args --no-headers")
    assert status == 0, out
    files, processes = out.split("---\n")
    assert "secret-one" not in files and "No such file or directory" in files
    pids = [line.split(None, 1) for line in processes.strip().splitlines()]
    assert pids[0][0] == "1" and not any("sleep 300" in args for _, args in pids), processes
    assert len(pids) <= 4, processes
    first.send("\n")
    assert first.finish()[0] == 0


@pytest.mark.parametrize("kind", LINUX)
def test_dyno_home_is_unreachable(start, home, kind):
    paths = [home / "token", home / "state.db", home / "slugs", home / "dynos", home]
    script = "; ".join(f"cat {p} 2>/dev/null || ls {p} 2>/dev/null || echo GONE" for p in paths)
    status, out, _ = run(start, kind, script + "; grep -rs SECRET /app /tmp /run /dev/shm; echo end")
    assert out.split() == ["GONE"] * len(paths) + ["end"], out


@pytest.mark.parametrize("kind", LINUX)
def test_a_home_under_a_system_dir_is_covered(tmp_path, kind):
    """$DYNO_HOME below /opt (bound read-only into every dyno) is hidden by an empty mount."""
    if not os.access("/opt", os.W_OK):
        pytest.skip("needs a writable /opt")
    with tempfile.TemporaryDirectory(dir="/opt", prefix="dynokernel-test-") as raw:
        home = Path(raw)
        (home / "token").write_text("TOKEN-SECRET\n")
        (home / "slug").mkdir()
        sandbox = SANDBOXES[kind](home)
        spec = DynoSpec(dyno_id=str(uuid.uuid4()), name="run.1", slug_dir=home / "slug", work_dir=home / "dyno",
                        argv=["sh", "-c", f"ls -A {home}; cat {home}/token; ls -d /opt/*"], env={"PATH": PATH})
        dyno = Dyno(sandbox, spec, tty=False)
        try:
            status, out = dyno.finish()
        finally:
            dyno.close()
    assert "TOKEN-SECRET" not in out and "No such file" in out, out
    assert home.name in out  # the folder itself is there, empty


@pytest.mark.parametrize("kind", LINUX)
def test_hostname_is_the_dyno_name_and_system_dirs_are_read_only(start, kind):
    script = "hostname; touch /usr/x /etc/x /x 2>&1; mount -o remount,rw /usr 2>&1 | grep -c denied"
    status, out, _ = run(start, kind, script, name="run.42")
    lines = out.splitlines()
    assert lines[0] == "run.42"
    assert sum("Read-only file system" in line for line in lines) == 3, out
    assert lines[-1] == "1", out


# sizes (linux + cgroups) ------------------------------------------------------------------------
# With cgroups where we may make them (root here), else with rlimits (RLIMIT_NPROC spares root).
@pytest.mark.parametrize("kind", LINUX)
@pytest.mark.skipif(cgroup_parents() is None and os.geteuid() == 0, reason="root has no process rlimit")
def test_a_process_spawning_loop_stops_at_the_pids_limit(start, kind):
    loop = "i=0; trap 'echo spawned $i' EXIT; while [ $i -lt 2000 ]; do sleep 300 & i=$((i+1)); done"
    started = time.monotonic()
    status, out, dyno = run(start, kind, argv=["sh", "-c", loop], max_pids=40)
    spawned = int(out.split("spawned ")[1].split()[0])
    assert status != 0 and spawned < 40, out
    assert time.monotonic() - started < 10
    if cgroup_parents():
        assert DynoCgroup.find(dyno.spec.dyno_id).pids() == set()


@pytest.mark.parametrize("kind", LINUX)
def test_a_memory_hog_is_stopped(start, kind):
    dyno = start(kind, "dd if=/dev/zero of=/dev/null bs=512M count=1", memory_bytes=32 << 20)
    status, out = dyno.finish()
    assert status == 137 or "memory exhausted" in out, (status, out)
    if cgroup_parents():
        assert status == 137 and DynoCgroup.find(dyno.spec.dyno_id).oom_kills() >= 1


@pytest.mark.parametrize("kind", LINUX)
@needs_cgroups
def test_memory_usage_is_readable_while_the_dyno_runs(start, kind):
    hold = "python3 -c \"b = b'x' * (40 << 20); print('held', flush=True); input()\""
    dyno = start(kind, hold)
    dyno.read_until("held")
    assert memory_usage(dyno.spec.dyno_id) >= 40 << 20
    dyno.send("\n")
    assert dyno.finish()[0] == 0


# cleanup ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BOTH)
def test_a_dyno_killed_mid_write_leaves_no_residue(start, kind):
    dyno = start(kind, "echo writing; while :; do head -c 65536 /dev/zero >> big; done")
    dyno.read_until("writing")
    dyno.sandbox.signal(dyno.proc.pid, signal.SIGKILL)
    dyno.finish()
    dyno.sandbox.cleanup(dyno.spec)
    assert not dyno.spec.work_dir.exists()


@pytest.mark.parametrize("kind", LINUX)
@needs_cgroups
def test_cleanup_after_a_manifold_crash_ends_the_dyno_and_removes_everything(start, kind):
    """The next manifold calls cleanup(spec) for a dyno it no longer supervises."""
    dyno = start(kind, "sleep 300 & echo running; wait")
    dyno.read_until("running")
    dyno.sandbox.cleanup(dyno.spec)
    assert dyno.proc.wait(timeout=TIMEOUT) != 0
    assert not dyno.spec.work_dir.exists()
    assert not any(path.exists() for path in DynoCgroup.find(dyno.spec.dyno_id).dirs.values())
