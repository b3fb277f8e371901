"""The output capture: the session's stdout/stderr as numbered records in a file, with backpressure.

``python -m smrunner`` starts here when ``SM_CAPTURE_DIR`` names a writable folder (the manager
mounts one per run). This process stays small (standard library only, no Flask): it starts the
runner proper (``python -m smrunner --run``) with fd 1 and 2 on two pipes, reads them and appends
records to ``$SM_CAPTURE_DIR/output.log``. Nothing is lost to a slow reader: when this process
cannot keep up, the pipes fill and the script blocks on its next write, as on a terminal. It
forwards SIGTERM/SIGINT/SIGHUP to the runner and exits with the runner's status once the pipes
are drained, so the container lives until every line is in the file. It also starts the runner
with glibc's ``MALLOC_ARENA_MAX`` at 2 unless the environment sets it: each thread of the web
server would otherwise keep a malloc arena of its own (2 MiB more in an idle session that served
a few concurrent requests).

When this process was itself started with ``MALLOC_ARENA_MAX`` set (the Docker backend sets it in
every session's environment), the runner is a fork of this process, not a second interpreter
started from nothing: the same runner, one Python start-up less on the way to the first page
(about 10 ms of CPU, under the session's CPU limit). glibc reads the variable once, when a
process starts: a fork of a process started without it would lack the cap, so then the runner is
spawned as ``python -m smrunner --run``.

A record is ``<seq> <stamp> <kind>\\t<text>\\n`` (the manager's reader,
``manager/sessions/capture.py``, documents and parses the same format):

- ``seq`` counts records from 1;
- ``stamp`` is UTC with nanoseconds (``2026-01-02T03:04:05.123456789Z``), strictly increasing
  from record to record, so a reader resumes after any record by its stamp;
- ``kind`` is ``stdout`` or ``stderr`` (one line of output, ``text`` as printed, without its
  newline; raw bytes, never containing a newline), ``note`` (a line of the runner's own notes:
  starting, serving, stopped; read from a third pipe, ``SM_RUNNER_NOTES_FD``), ``trunc`` (the
  size cap was reached: output after this record is not stored; ``text`` says so), or ``end``
  (the last record: ``text`` is the runner's exit status).

Caps, from the environment: ``SM_LOG_MAX_LINE`` bytes a line (longer lines keep their head and
a ``[line cut: ...]`` marker; the rest, up to the next newline, is read and dropped, never held),
``SM_LOG_MAX_BYTES`` bytes of records a run (then one ``trunc`` record; output is still read, so
the script never blocks for good, and dropped).
"""

from __future__ import annotations

# This process lives as long as the session: it imports what it uses from the C core and nothing
# more. subprocess, selectors, contextlib and typing would cost every session 2 MiB, and the
# signal module's enums (enum and its imports) 0.7 MiB: _signal is its C half, with the same
# functions and constants, as plain ints.
import _signal
import _socket
import os
import select
import sys
import time
from types import FrameType

CAPTURE_FILE = "output.log"
READY_FILE = "standby-ready"  # a standby's runner creates it once it waits, Flask imported
DEFAULT_MAX_LINE = 16 * 1024
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
READ_SIZE = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # the most an unprivileged process may ask for (fs.pipe-max-size)
DRAIN_GRACE = 2.0  # seconds to wait for output after the runner exited (its children may print)
POLL_MS = 250  # how often the loop looks whether the runner exited while its pipes stay open
MALLOC_ARENA_MAX = "2"
ROUTE_GATEWAY = 0x2  # RTF_GATEWAY in /proc/net/route's flags
DISCARD_PORT = 9
F_SETPIPE_SZ = 1031


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


class Stamper:
    """Strictly increasing RFC 3339 stamps with nanoseconds, cheap to make in bulk."""

    def __init__(self) -> None:
        self.last = 0
        self._second = -1
        self._prefix = b""

    def next(self) -> bytes:
        now = time.time_ns()
        self.last = now if now > self.last else self.last + 1
        second, fraction = divmod(self.last, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%09dZ" % (self._prefix, fraction)


class Capture:
    """Split two streams into lines and append them as records to one file (see the module)."""

    def __init__(self, fd: int, *, max_line: int, max_bytes: int):
        self.fd = fd
        self.max_line = max_line
        self.max_bytes = max_bytes
        self.seq = 0
        self.size = os.fstat(fd).st_size
        self.capped = False
        self.stamps = Stamper()
        self._partial = {b"stdout": b"", b"stderr": b"", b"note": b""}
        self._skipping = {b"stdout": False, b"stderr": False, b"note": False}

    def _cut(self, head: bytes) -> bytes:
        head = head[: self.max_line]
        # Do not end on half a UTF-8 character: find where the last character starts.
        start = len(head) - 1
        while start > 0 and len(head) - start < 4 and head[start] & 0xC0 == 0x80:
            start -= 1
        lead = head[start] if head else 0
        width = 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2 if lead >= 0xC0 else 1
        if start + width > len(head):
            head = head[:start]
        marker = (
            f" [line cut: longer than SM_LOG_MAX_LINE={self.max_line} bytes;"
            " the rest of this line is not stored]"
        )
        return head + marker.encode()

    def feed(self, kind: bytes, data: bytes) -> None:
        """Add output of one stream; complete lines become records now."""
        if self.capped:
            return  # read and dropped: the script must not block on a full pipe
        if self._skipping[kind]:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._skipping[kind] = False
            data = data[newline + 1 :]
        if not data:
            return
        parts = data.split(b"\n")
        rest = parts.pop()
        lines: list[bytes] = []
        if parts:
            first = self._partial[kind] + parts[0]
            self._partial[kind] = b""
            parts[0] = first
            max_line = self.max_line
            for line in parts:
                lines.append(line if len(line) <= max_line else self._cut(line))
        if rest:
            held = self._partial[kind] + rest
            if len(held) > self.max_line:
                lines.append(self._cut(held))
                held = b""
                self._skipping[kind] = True
            self._partial[kind] = held
        if lines:
            self.write(kind, lines)

    def finish_lines(self) -> None:
        """Store lines left without a final newline (the streams ended)."""
        for kind, held in self._partial.items():
            if held:
                self._partial[kind] = b""
                self.write(kind, [held])

    def write(self, kind: bytes, lines: list[bytes]) -> None:
        if self.capped:
            return
        records = []
        size = self.size
        for line in lines:
            self.seq += 1
            record = b"%d %s %s\t%s\n" % (self.seq, self.stamps.next(), kind, line)
            if size + len(record) > self.max_bytes:
                self.seq -= 1
                self.capped = True
                break
            records.append(record)
            size += len(record)
        if self.capped:
            self.seq += 1
            note = (
                f"this run's output reached the log size cap of {self.max_bytes} bytes"
                " (SM_LOG_MAX_BYTES); its further output is not stored."
            )
            records.append(b"%d %s trunc\t%s\n" % (self.seq, self.stamps.next(), note.encode()))
        self._write_all(b"".join(records))

    def end(self, status: int) -> None:
        self.seq += 1
        self._write_all(b"%d %s end\t%d\n" % (self.seq, self.stamps.next(), status))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)


def _open_capture() -> int | None:
    folder = os.environ.get("SM_CAPTURE_DIR")
    if not folder:
        return None
    try:
        return os.open(
            os.path.join(folder, CAPTURE_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
    except OSError as exc:
        print(f"[smrunner] output capture unavailable ({exc}); output goes to the engine log",
              file=sys.stderr, flush=True)  # fmt: skip
        return None


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(read_end, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # a smaller pipe only means more wake-ups
    return read_end, write_end


def exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it (128 + signal for a signal)."""
    return 128 - returncode if returncode < 0 else returncode


class Child:
    """The runner proper, a child process: the small part of ``subprocess.Popen`` this process
    needs, without importing it."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def spawn(
        cls, argv: list[str], env: dict[str, str], stdout: int, stderr: int, keep: int
    ) -> Child:
        """Start ``argv`` with ``stdout``/``stderr`` as its fd 1 and 2 and ``keep`` open as is;
        every other descriptor of this process is close-on-exec. OSError when it cannot start."""
        os.set_inheritable(keep, True)
        pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2)],
            # As Popen does: Python ignores these, a child expects them at their defaults.
            setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
        )
        return cls(pid)

    def poll(self) -> int | None:
        """The return code (``-N`` for signal N) once the child exited, else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:  # never a reaped pid, which the system may reuse
            try:  # noqa: SIM105 - contextlib.suppress would import contextlib here (0.6 MiB)
                os.kill(self.pid, signum)
            except OSError:
                pass  # it has just exited


def runner_environment() -> dict[str, str]:
    """The runner's environment: this one without the capture folder, with the allocator set.

    A standby's runner (``SM_CONTEXT_WAIT=1``) is told where to say it is ready (a file in the
    capture folder, ``READY_FILE``), once it waits for its context with Flask imported.
    """
    environment = {k: v for k, v in os.environ.items() if k != "SM_CAPTURE_DIR"}
    environment.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENA_MAX)
    folder = os.environ.get("SM_CAPTURE_DIR")
    if folder and os.environ.get("SM_CONTEXT_WAIT") == "1":
        environment["SM_STANDBY_READY_FILE"] = os.path.join(folder, READY_FILE)
    return environment


def may_fork() -> bool:
    """Whether the runner may be a fork of this process: glibc capped this process's malloc
    arenas (``MALLOC_ARENA_MAX`` was set when it started), so a fork inherits the cap."""
    return bool(os.environ.get("MALLOC_ARENA_MAX"))


def become_runner(environment: dict[str, str], stdout: int, stderr: int, keep: int) -> None:
    """In a forked child: take the runner's environment, ``stdout``/``stderr`` as fd 1 and 2,
    and close every other descriptor but ``keep`` (the notes pipe): the script must not hold
    the capture file or the pipes' read ends."""
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    os.environ.clear()
    os.environ.update(environment)


def run_captured(fd: int) -> int:
    """Run the runner with its output captured into ``fd``; return its exit status (in a
    forked runner: the runner's own, once it is done)."""
    capture = Capture(
        fd,
        max_line=_env_int("SM_LOG_MAX_LINE", DEFAULT_MAX_LINE),
        max_bytes=_env_int("SM_LOG_MAX_BYTES", DEFAULT_MAX_BYTES),
    )
    out_read, out_write = _pipe()
    err_read, err_write = _pipe()
    note_read, note_write = _pipe()  # the runner's own notes, apart from the script's stderr
    environment = runner_environment()  # the script has no business with the capture file
    environment["SM_RUNNER_NOTES_FD"] = str(note_write)
    if may_fork():
        pid = os.fork()
        if pid == 0:
            become_runner(environment, out_write, err_write, note_write)
            from smrunner.main import main as run

            return run()
        child = Child(pid)
    else:
        argv = [sys.executable, "-m", "smrunner", "--run"]
        child = Child.spawn(argv, environment, out_write, err_write, note_write)
    os.close(out_write)
    os.close(err_write)
    os.close(note_write)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
        _signal.signal(signum, forward)

    streams = {out_read: b"stdout", err_read: b"stderr", note_read: b"note"}
    poller = select.poll()
    for stream_fd in streams:
        poller.register(stream_fd, select.POLLIN)
    exited_at: float | None = None
    while streams:
        events = poller.poll(POLL_MS)
        for stream_fd, _ in events:
            try:
                data = os.read(stream_fd, READ_SIZE)
            except InterruptedError:
                continue
            if data:
                capture.feed(streams[stream_fd], data)
            else:  # the writers closed it (POLLHUP)
                poller.unregister(stream_fd)
                os.close(stream_fd)
                del streams[stream_fd]
        if exited_at is None:
            if child.poll() is not None:
                exited_at = time.monotonic()
        elif not events and time.monotonic() - exited_at > DRAIN_GRACE:
            break  # a process the script left behind holds the pipes open: stop waiting
    capture.finish_lines()
    status = exit_status(child.wait())
    capture.end(status)
    os.close(fd)
    return status


def default_gateway(routes: str) -> str | None:
    """The IPv4 default gateway in the text of ``/proc/net/route``, or None without one."""
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & ROUTE_GATEWAY:
            return _socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return None


def announce_address(routes_path: str = "/proc/net/route") -> None:
    """Make this container's address known on its network now: send one empty datagram to the
    gateway, which costs an ARP request that every host on the bridge learns from.

    Docker 20.10 does not announce a new container's address. When the manager had already
    sent a packet to that address (a connection to the session that had it before, closing), the
    kernel's pending lookup is asked again only after a second (``retrans_time``), and the first
    page of the new session waited that long. Any ARP request from this address answers a
    pending lookup at once. The datagram itself goes to the discard port and is dropped (the
    host's firewall drops new connections from session bridges); no network, no gateway: nothing
    is sent.
    """
    try:
        with open(routes_path) as routes:
            gateway = default_gateway(routes.read())
        if gateway is None:
            return
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.sendto(b"", (gateway, DISCARD_PORT))
        finally:
            sock.close()
    except OSError:
        pass  # best effort: the address becomes known at the next lookup anyway


def main() -> int:
    """Capture when the manager asked for it (``SM_CAPTURE_DIR``), else run the runner here."""
    announce_address()
    fd = _open_capture()
    if fd is None:
        from smrunner.main import main as run

        return run()
    return run_captured(fd)
