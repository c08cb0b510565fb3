"""Every test runs with Kiln's paths in its own temp folder and the current folder there too."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_support import container_engine, engine_env  # noqa: F401 - the session's container engine and registry

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def kiln_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "kiln-home"
    monkeypatch.setenv("KILN_HOME", str(home))
    monkeypatch.setenv("KILN_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("KILN_WORKSPACE", raising=False)
    monkeypatch.delenv("KILN_DEBUG", raising=False)
    for engine in ("DOCKER_HOST", "KILN_DOCKER_HOST"):  # a test uses an engine only when it asks (engine_env)
        monkeypatch.delenv(engine, raising=False)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield home


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def kiln_cmd() -> list[str]:
    """The real `kiln` command of this interpreter's environment."""
    exe = Path(sys.executable).parent / "kiln"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kiln.cli"]


@pytest.fixture
def run_kiln(kiln_home: Path):  # type: ignore[no-untyped-def]
    """Run the real CLI in a subprocess: returns (exit code, stdout, stderr)."""
    import subprocess

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run([*kiln_cmd(), *args], capture_output=True, text=True, cwd=cwd, env=full_env,
                              timeout=300, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for a whole test module (builds are slow; most tests can share them)."""
    return tmp_path_factory.mktemp("kiln-cache")


@pytest.fixture
def module_build_cache(kiln_home: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use in a module (``pytestmark = pytest.mark.usefixtures("module_build_cache")``): its tests build
    into, and take builds from, the module's cache."""
    monkeypatch.setenv("KILN_CACHE_DIR", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="session", autouse=True)
def _no_detached_process_left() -> Iterator[None]:
    """Whatever a test started detached (run supervisors, service servers) has ended by the session's end:
    the tests stop what they start."""
    yield
    import time

    from kiln._process import _children

    deadline = time.monotonic() + 20  # supervisors of canceled runs and draining servers end on their own
    while any(p.poll() is None for p in _children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [" ".join(map(str, p.args)) for p in _children if p.poll() is None]  # type: ignore[union-attr]
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not left, f"still running at the end of the session: {left}"


# -- a real PostgreSQL server, once per test session -------------------------------------------------------------

PG_BIN = Path(os.environ.get("KILN_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (role ``kiln``, trust auth); ``new_database`` makes a
    fresh database and returns its URL."""

    def __init__(self, folder: Path, port: int, pid: int) -> None:
        self.folder, self.port, self.pid = folder, port, pid
        self._count = 0

    def url(self, database: str) -> str:
        return f"postgresql://kiln@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self._count += 1
        name = f"kiln_test_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root (CI runs as root): run them as Debian's postgres user
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def _postgres_cluster(prefix: str, initdb: list[str], password: str | None = None) -> Iterator[tuple[Path, int, int]]:
    """A PostgreSQL cluster made with ``initdb`` arguments, on 127.0.0.1: (folder, port, pid), stopped by its pid.
    ``password``: the initial role's (through a password file removed once initdb has read it)."""
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL is not installed ({PG_BIN}/initdb is missing): `make test` installs it "
                    "(apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # short: the socket path must fit in 107 bytes
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pid = 0
    try:
        extra = []
        if password is not None:
            pwfile = folder / "pwfile"
            pwfile.write_text(password + "\n", encoding="utf-8")
            pwfile.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            extra = [f"--pwfile={pwfile}"]
        try:
            subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), *initdb, *extra, "--no-locale",
                                         "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        finally:
            (folder / "pwfile").unlink(missing_ok=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l",
                                     str(folder / "log"), "-o", options, "start"]),
                       check=True, capture_output=True, timeout=120)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield folder, port, pid
    finally:
        if pid:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown: ends sessions, checkpoints, exits
            deadline = time.monotonic() + 60
            # the server removes its pid file as it ends (the process itself is not our child to wait for)
            while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _postgres_cluster("kiln-pg-", ["-U", "kiln", "--auth=trust"]) as (folder, port, pid):
        yield PostgresServer(folder, port, pid)


class PasswordPostgresServer:
    """A PostgreSQL cluster on 127.0.0.1 that checks passwords (scram-sha-256 for every connection, the local
    socket included): ``admin`` (superuser) with ``admin_password``."""

    admin = "kiln_admin"

    def __init__(self, folder: Path, port: int, pid: int, admin_password: str) -> None:
        self.folder, self.port, self.pid, self.admin_password = folder, port, pid, admin_password

    def url(self, database: str, user: str, password: str | None = None) -> str:
        return f"postgresql://{user}{':' + password if password else ''}@127.0.0.1:{self.port}/{database}"

    def admin_url(self, database: str = "postgres") -> str:
        return self.url(database, self.admin, self.admin_password)


@pytest.fixture(scope="session")
def postgres_password_server() -> Iterator[PasswordPostgresServer]:
    """A second PostgreSQL server, started once, that wants passwords (the first one trusts everyone)."""
    import uuid

    password = "kilnpgadmin" + uuid.uuid4().hex
    with _postgres_cluster("kiln-pgpw-", ["-U", PasswordPostgresServer.admin, "--auth=scram-sha-256"],
                           password) as (folder, port, pid):
        yield PasswordPostgresServer(folder, port, pid, password)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty PostgreSQL database for this test."""
    return postgres_server.new_database()


# -- a private package index with basic auth (pypiserver), once per test session ---------------------------------

class PrivateIndex:
    """pypiserver on 127.0.0.1 asking every request (list, download) for ``user``/``token`` (an htpasswd file),
    serving ``packages`` (wheels the tests build; add more with ``add``)."""

    def __init__(self, host: str, user: str, token: str, packages: Path, pid: int) -> None:
        self.host, self.user, self.token, self.packages, self.pid = host, user, token, packages, pid

    def add(self, wheel: Path) -> None:
        import shutil

        shutil.copyfile(wheel, self.packages / wheel.name)


@pytest.fixture(scope="session")
def private_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    import base64
    import hashlib
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request
    import uuid

    builds = str(Path(__file__).parent / "integration" / "builds")
    if builds not in sys.path:
        sys.path.insert(0, builds)
    from build_support import make_wheel

    folder = tmp_path_factory.mktemp("private-index")
    packages = folder / "packages"
    make_wheel(packages, "kilnteampriv", "1.0", "ANSWER = 'from the private index'\n")
    user, token = "kiln-team", "kilnidxtoken" + uuid.uuid4().hex  # unique: a test can look for it anywhere
    # Apache's {SHA} scheme, which pypiserver checks with passlib (its [passlib] extra)
    sha = base64.b64encode(hashlib.sha1(token.encode()).digest()).decode()
    (folder / "htpasswd").write_text(f"{user}:{{SHA}}{sha}\n", encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(folder / "log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
                                 "-P", str(folder / "htpasswd"), "-a", "download,list,update", str(packages)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when it answers (401: it wants the credentials)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=5)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pypiserver didn't start: {(folder / 'log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield PrivateIndex(f"127.0.0.1:{port}", user, token, packages, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
# -- a real Ray head, once per test session, only when a test asks for it ---------------------------------------

#: what Ray needs on these machines (COMPONENTS.md): stay on 127.0.0.1, no token files, no usage reports
RAY_VARIABLES = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class RayHead:
    """A Ray head on 127.0.0.1 with its dashboard (the Jobs API) at ``address``; its node's Kiln keeps its
    workspace and build cache in ``node_home`` for the whole session."""

    def __init__(self, folder: Path, address: str, leader: int, node_home: Path) -> None:
        self.folder, self.address, self.leader, self.node_home = folder, address, leader, node_home


def _ray_pids(leader: int, folder: Path) -> list[int]:
    """Every process of our head: its session (``ray start`` is the leader of a new one), and whatever
    else names its temp folder (workers, job drivers started in sessions of their own)."""
    found = []
    mark = str(folder).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":
                continue
            session = int(fields[3])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if session == leader or mark in cmdline or mark in environ:
            found.append(int(entry))
    return found


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """Started on first use (~15 s), stopped by its pids at the end of the session (never `ray stop`, which
    stops every Ray process of the machine); the test session fails if one of them is left."""
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import time
    import urllib.request

    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.fail("Ray is not installed in this environment: `pip install -e '.[dev]'` installs it (kiln[ray])")
    folder = Path(tempfile.mkdtemp(prefix="kiln-ray-"))  # short: Ray's socket paths must fit in 107 bytes
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    gcs, dashboard = ports
    node_home = folder / "node-home"
    env = {**os.environ, **RAY_VARIABLES, "KILN_HOME": str(node_home), "KILN_CACHE_DIR": str(node_home / "cache"),
           "UV_PYTHON_DOWNLOADS": "never", "PATH": f"{ray.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("KILN_WORKSPACE", None)
    with open(folder / "head.log", "wb") as log:
        head = subprocess.Popen([str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                                 "--num-cpus=2", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                                 f"--dashboard-port={dashboard}", f"--temp-dir={folder}", "--disable-usage-stats"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                pytest.fail(f"the Ray head ended at its start: {(folder / 'head.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{address}/api/jobs/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not answer at {address} in 180 s")
            time.sleep(0.5)
        yield RayHead(folder, address, head.pid, node_home)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=15)
        for _ in range(50):
            pids = _ray_pids(head.pid, folder)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        if head.poll() is None:
            head.kill()
        head.wait()
        left = _ray_pids(head.pid, folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"Ray processes left after the session: {left}"
