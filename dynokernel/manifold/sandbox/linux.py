"""The Linux sandbox: namespaces, the slug as the lower layer of an overlay at /app, a new root.

Each dyno gets new user, mount, PID, UTS and IPC namespaces (util-linux `unshare`) and a root
of its own: a read-only skeleton of folders (made once per $DYNO_HOME, shared by all dynos, in
`sandbox/root-<digest>`) with, mounted on it in the dyno's mount namespace only, the host's system
folders read-only, the overlay at `/app` (the slug below, `work_dir/upper` above), a private
`/tmp`, `/run` and `/dev/shm`, a minimal `/dev`, a new devpts and the `/proc` of its own PID
namespace.  Nothing else of the host — in particular nothing of $DYNO_HOME — is in that root.

    sandbox = LinuxSandbox(home)
    launch = sandbox.prepare(spec)   # folders, fstab, cgroup; no process is started
    proc = sandbox.spawn(launch, stdin, stdout, stderr, tty=False)

The spawned process (outside the new PID namespace) joins the dyno's cgroup, then forks the
namespace's init, which mounts everything (`mount -a -T fstab`), pivots into the new root and
runs the dyno's command in a further user and mount namespace, so the mounts are locked: the
dyno can't remount the system folders writable or uncover what lies under them.  The init
waits for the command and exits with its status; when it exits the kernel kills every other
process of the namespace.  The init ignores signals (the kernel drops them for a namespace init
without handlers) and the spawned process traps them, so SIGTERM and SIGHUP reach the dyno's
command, and the dyno ends when the command ends; SIGKILL ends everything at once.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from .base import DynoSpec, Launch, Sandbox, SandboxError
from .limits import cgroup_parents

SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/var/lib/gems")  # read-only inside, where the host has them
TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # merged-/usr links, or folders to bind
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
             "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
ADDON_MOUNTS = "var/lib/dyno-addons"  # where add-on directories appear inside (DynoSpec.extra_mounts)
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger")  # kernel knobs a root-owned dyno could turn
NAMESPACES = ("--user", "--map-root-user", "--mount", "--uts", "--ipc", "--pid")
TOOLS = ("unshare", "mount", "umount", "pivot_root")
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# $0 is the dyno's name, "$@" its command.  Runs in the new user/mount/UTS/IPC namespaces but
# outside the new PID namespace: its first child, the subshell, is that namespace's init.  The
# shells' own stderr is /dev/null (fd 3 keeps the dyno's), so "Terminated" and the like from a
# shell about its child don't end up in the dyno's output.
_LAUNCH = """\
set -e
{join}trap : HUP INT TERM QUIT
set +e
exec 3>&2 2>/dev/null
(
exec 2>&3 3>&-
set -e
{{ printf %s "$0" >/proc/sys/kernel/hostname; }} 2>/dev/null || {hostname}
{mount} -a -T {fstab}
if [ -t 0 ]; then {mount} --bind -o ro /proc/self/fd/0 {root}/dev/console; fi
cd {root}
{pivot_root} . .
{umount} -l .
cd /app
exec {unshare} --user --map-root-user --mount --propagation unchanged -- /bin/sh /dev/init "$@"
)
exit $?
"""

# The namespace's init, /dev/init inside: runs the command and exits with its status.
_INIT = """\
exec 3>&2 2>/dev/null
(exec "$@" 2>&3 3>&-)
exit $?
"""

_PROBE = """\
mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged &&
mount -t proc proc proc && test -d proc/1 && echo ok
"""


class LinuxSandbox(Sandbox):
    """Namespaces + overlay + a new root per dyno; sizes from cgroups, else rlimits.

    Works as root and, where the kernel allows unprivileged user namespaces, as any user.
    Layout of a dyno's `work_dir`: `root/` (where the skeleton is mounted), `upper/` and
    `work/` (the overlay's writable layer), `lower` (a link to the slug) and `fstab`.
    """

    name = "linux"
    _available: bool | None = None
    _skeleton_dir: Path | None = None

    @classmethod
    def available(cls) -> bool:
        if cls._available is None:
            cls._available = _tools() is not None and _probe(_tools())
        return cls._available

    def describe(self) -> str:
        sizes = "cgroup v1 memory+pids" if cgroup_parents() else "rlimits"
        return f"linux (user/mount/pid/uts/ipc namespaces, overlay /app; sizes: {sizes})"

    def prepare(self, spec: DynoSpec) -> Launch:
        tools = _tools()
        if tools is None:
            raise SandboxError("the linux sandbox needs util-linux unshare, mount, umount and pivot_root")
        root = spec.work_dir / "root"
        _make_dirs(spec)
        (spec.work_dir / "fstab").write_text(_fstab(spec, self._skeleton(), self._masks(spec)))
        join, prefix = self.size_limits(spec)
        script = _LAUNCH.format(
            join=join, root=shlex.quote(str(root)),
            fstab=shlex.quote(str(spec.work_dir / "fstab")),
            hostname=f'{tools["hostname"]} "$0"' if tools.get("hostname") else ":",
            **{name: tools[name] for name in TOOLS})
        argv = [*prefix, tools["unshare"], *NAMESPACES, "--", "/bin/sh", "-c", script, spec.name, *spec.argv]
        return Launch(argv=argv, env=dict(spec.env, HOME="/app"), cwd=str(spec.work_dir), home="/app")

    def cleanup(self, spec: DynoSpec) -> None:
        self.remove_limits(spec)
        _rmtree(spec.work_dir)


    def _skeleton(self) -> Path:
        """The new root's folders, files and links; made once (atomically), never changed."""
        if self._skeleton_dir is None:
            layout = (_host_layout(), DEVICES, DEV_LINKS, _INIT, ADDON_MOUNTS)
            digest = hashlib.sha256(repr(layout).encode()).hexdigest()
            path = self.home / "sandbox" / f"root-{digest[:12]}"
            if not path.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                draft = Path(tempfile.mkdtemp(prefix=".root-", dir=path.parent))
                _make_skeleton(draft)
                try:
                    draft.rename(path)
                except OSError:  # another manifold made it first
                    _rmtree(draft)
            self._skeleton_dir = path
        return self._skeleton_dir

    def _masks(self, spec: DynoSpec) -> list[Path]:
        """Manifold paths that lie under a read-only system folder and must be covered inside."""
        private = {self.home.resolve(), spec.slug_dir.resolve(), spec.work_dir.resolve()}
        exposed = [path for path in private if any(path.is_relative_to(d) for d in _host_layout()[1])]
        return sorted(p for p in exposed if not any(p != q and p.is_relative_to(q) for q in exposed))


@functools.cache
def _tools() -> dict[str, str] | None:
    """Absolute paths of the util-linux tools (and `hostname`, optional); None if one is missing."""
    found = {name: shutil.which(name, path=_SBIN_PATH) for name in (*TOOLS, "hostname")}
    if any(found[name] is None for name in TOOLS):
        return None
    return {name: path for name, path in found.items() if path}


def _probe(tools: dict[str, str]) -> bool:
    """Whether namespaces, overlay and proc mounts work here (one short process, at most once)."""
    with tempfile.TemporaryDirectory(prefix="dynokernel-probe-") as tmp:
        for name in ("lower", "upper", "work", "merged", "proc"):
            os.mkdir(os.path.join(tmp, name))
        try:
            proc = subprocess.Popen([tools["unshare"], *NAMESPACES, "--fork", "/bin/sh", "-c", _PROBE],
                                    cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env={"PATH": _SBIN_PATH})
            out, _ = proc.communicate(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        finally:
            _rmtree(Path(tmp))
    return out.strip() == b"ok"


@functools.cache
def _host_layout() -> tuple[dict[str, str], list[Path]]:
    """The host's top-level links (name → target) and the folders to bind read-only."""
    links, binds = {}, []
    for name in TOP_LINKS:
        path = Path("/", name)
        if path.is_symlink():
            links[name] = os.readlink(path)
        elif path.is_dir():
            binds.append(path)
    binds += [Path(d) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    return links, binds


def _make_dirs(spec: DynoSpec) -> None:
    """The dyno's own folders: the mount point of its root and the overlay's layers."""
    for sub in ("root", "upper", "work"):
        (spec.work_dir / sub).mkdir(parents=True, exist_ok=True)
    if not (spec.work_dir / "lower").is_symlink():
        (spec.work_dir / "lower").symlink_to(spec.slug_dir)


def _make_skeleton(skel: Path) -> None:
    """Mount points, empty files to bind devices on, links, and /dev/init."""
    links, binds = _host_layout()
    for sub in ("app", "tmp", "proc", "run", "dev/pts", "dev/shm", "var", ADDON_MOUNTS,
                *(str(d)[1:] for d in binds)):
        (skel / sub).mkdir(parents=True, exist_ok=True)
    for name in (*DEVICES, "console"):
        (skel / "dev" / name).touch()
    (skel / "dev" / "init").write_text(_INIT)
    all_links = {**links, **{f"dev/{k}": v for k, v in DEV_LINKS.items()}, "var/tmp": "../tmp", "var/run": "../run"}
    for name, target in all_links.items():
        (skel / name).symlink_to(target)
    skel.chmod(0o755)


def _fstab(spec: DynoSpec, skel: Path, masks: list[Path]) -> str:
    """Every mount of the new root, in order; overlay layers are relative to `work_dir`."""
    root = spec.work_dir / "root"
    inside = lambda path: root / str(path).lstrip("/")  # noqa: E731
    entries = [(skel, root, "none", "bind,ro"),
               ("overlay", root / "app", "overlay", "lowerdir=lower,upperdir=upper,workdir=work")]
    entries += [(d, inside(d), "none", "bind,ro") for d in _host_layout()[1]]
    entries += [("tmpfs", inside(m), "tmpfs", "ro,size=4k,mode=000") for m in masks]
    entries += [("tmpfs", root / d, "tmpfs", "nosuid,nodev,mode=1777") for d in ("tmp", "dev/shm")]
    entries += [("tmpfs", root / "run", "tmpfs", "nosuid,nodev,mode=755")]
    entries += [(f"/dev/{name}", root / "dev" / name, "none", "bind,ro") for name in DEVICES]
    entries += [("devpts", root / "dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=620,nosuid,noexec"),
                ("proc", root / "proc", "proc", "nosuid,nodev,noexec")]
    entries += [(p, root / p[1:], "none", "bind,ro") for p in PROC_READ_ONLY if os.path.exists(p)]
    if spec.extra_mounts:
        entries += [("tmpfs", root / ADDON_MOUNTS, "tmpfs", "nosuid,nodev,mode=755")]
        entries += [(host, inside(path), "none", "bind,X-mount.mkdir") for host, path in spec.extra_mounts]
    return "".join(f"{_fstab_field(src)} {_fstab_field(dst)} {kind} {opts} 0 0\n"
                   for src, dst, kind, opts in entries)


def _fstab_field(value: str | Path) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in str(value))


def _rmtree(path: Path) -> None:
    """Remove a tree, also folders the dyno (or overlayfs) left without permissions."""
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except OSError:
        os.chmod(path, 0o700)
        for top, dirs, _ in os.walk(path):
            for name in dirs:
                if not os.path.islink(os.path.join(top, name)):
                    os.chmod(os.path.join(top, name), 0o700)
        shutil.rmtree(path)
