"""N replicas of the app behind nginx, on one machine: `./run.sh serve N` (or `python deploy/serve.py N`).

    python deploy/serve.py 2                        # http://127.0.0.1:8080, replicas on 8601 and 8602
    python deploy/serve.py 4 --address 0.0.0.0 --port 80 --state-dir /tmp/digits

Starts `streamlit run app.py` N times, fills in deploy/nginx.conf and runs Debian's nginx
with it in the foreground, unprivileged: its configuration, pid file, logs and temporary
files are in --state-dir. Prints one line once everything answers, then waits; Ctrl-C or
SIGTERM stops all of it, and so does any part that exits on its own.
"""

import argparse
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("nginx.conf")
STREAMLIT_CONFIG = ROOT / ".streamlit" / "config.toml"
NGINX = "/usr/sbin/nginx"
MODULES = "/usr/lib/nginx/modules"
STREAM_MODULE = f"{MODULES}/ngx_stream_module.so"  # Debian's libnginx-mod-stream
JS_MODULE = f"{MODULES}/ngx_stream_js_module.so"  # Debian's libnginx-mod-stream-js (njs)
PACKAGES = "nginx libnginx-mod-stream libnginx-mod-stream-js"
START_TIMEOUT = 120  # seconds for every replica's health check on a busy 2-core machine
FORM_OVERHEAD_MB = 1  # an upload's multipart form around the file: a few hundred bytes, rounded up
# Per client (one IP address). A page load is about 150 requests for the app's files, most of
# them at once; clicks and strokes travel on the WebSocket, not as requests.
LIMITS = {
    "REQUEST_RATE": "20r/s",
    "REQUEST_BURST": "60",
    "FILE_RATE": "100r/s",
    "FILE_BURST": "400",
    "HTTP_CONNECTIONS": "32",
    "STREAM_CONNECTIONS": "32",
    # Open tabs: each one's messages are limited on its own, so these two bound a client's reruns.
    "WEBSOCKETS_PER_CLIENT": "2",
    # New WebSockets (page loads, reconnections): each starts with a full burst of messages.
    "WEBSOCKET_OPEN_RATE": "10r/m",
    "WEBSOCKET_OPEN_BURST": "10",
    # Bytes per second a WebSocket may send, averaged since it opened: a drawing's message is
    # tens of kB and passes at once after a pause; a flood of bytes gets no further than this.
    # Messages are counted too, by websocket_limit.js.
    "WEBSOCKET_RATE": "256k",
}
LIMITER = """    server {{  # replica {number}'s WebSockets: what a client sends, held to a person's pace
        listen {limiter};
        js_filter websocket_limit.limit;
        proxy_upload_rate {rate};
        proxy_pass {replica};
        proxy_timeout 1h;
    }}
"""


class DeployError(RuntimeError):
    """A part of the deployment could not be started; the message says which and why."""


def free_port(address="127.0.0.1"):
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def upload_limit_mb():
    """The app's upload limit in MB (server.maxUploadSize), so that nginx refuses no upload the app takes."""
    return tomllib.loads(STREAMLIT_CONFIG.read_text())["server"]["maxUploadSize"]


def nginx_config(state_dir, listen, internal, replica_ports, limiter_ports):
    """deploy/nginx.conf with every @NAME@ filled in."""
    replicas = [f"127.0.0.1:{port}" for port in replica_ports]
    limiters = [f"127.0.0.1:{port}" for port in limiter_ports]
    values = {
        **LIMITS,
        "STATE": str(state_dir),
        "LISTEN": listen,
        "PORT": listen.rsplit(":", 1)[-1],
        "INTERNAL": internal,
        "STREAM_MODULE": STREAM_MODULE,
        "JS_MODULE": JS_MODULE,
        "DEPLOY_DIR": str(TEMPLATE.parent),
        # Started as root, nginx's workers switch to an unprivileged user; otherwise the user does not change.
        "USER": "user nobody nogroup;" if os.geteuid() == 0 else "",
        "UPLOAD_LIMIT": f"{upload_limit_mb() + FORM_OVERHEAD_MB}m",
        "REPLICAS": "\n".join(f"        server {replica};" for replica in replicas),
        "WEBSOCKETS": "\n".join(f"        server {limiter};" for limiter in limiters),
        "LIMITERS": "\n".join(
            LIMITER.format(number=number, limiter=limiter, replica=replica, rate=LIMITS["WEBSOCKET_RATE"])
            for number, (limiter, replica) in enumerate(zip(limiters, replicas), start=1)
        ),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    unfilled = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if unfilled:
        raise DeployError(f"{TEMPLATE} names values serve.py does not fill in: {', '.join(unfilled)}")
    return text


def prepare_state(state_dir):
    """The state folder with nginx's temporary folders, writable by its workers."""
    temp = state_dir / "temp"
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / name).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(temp / name, nobody.pw_uid, nobody.pw_gid)


def wait_until_healthy(url, processes, timeout=START_TIMEOUT):
    """Wait for url's health check, failing as soon as any of the processes has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise DeployError(f"{name} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise DeployError(f"{url} did not answer its health check within {timeout} s")


def start_replica(port, state_dir):
    """`streamlit run app.py` on 127.0.0.1:port, its output in state_dir/replica-PORT.log."""
    log = open(state_dir / f"replica-{port}.log", "wb")  # noqa: SIM115 (the replica writes to it for its lifetime)
    return subprocess.Popen(app_command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def app_command(port):
    """The command line of one app server, headless on 127.0.0.1:port (run in the project folder)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]


def start_nginx(state_dir, config):
    """nginx in the foreground with this configuration, after `nginx -t` has checked it."""
    missing = [path for path in (NGINX, STREAM_MODULE, JS_MODULE) if not Path(path).exists()]
    if missing:
        raise DeployError(
            f"needs Debian's nginx and its modules ({', '.join(missing)} missing): "
            f"apt-get install {PACKAGES}, or use ./run.sh serve"
        )
    config_path = state_dir / "nginx.conf"
    config_path.write_text(config)
    arguments = [NGINX, "-p", str(state_dir), "-c", str(config_path), "-e", str(state_dir / "error.log")]
    checked = subprocess.run([*arguments, "-t", "-q"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise DeployError(f"nginx refused {config_path}: {checked.stderr.strip()}")
    return subprocess.Popen([*arguments, "-g", "daemon off;"], stderr=open(state_dir / "nginx.out", "wb"))


def interrupt(signal_number, frame):
    """SIGTERM stops everything, as Ctrl-C does."""
    raise KeyboardInterrupt


def stop(processes):
    """Terminate every process, then kill what is still running after 10 s."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(replicas, address, port, state_dir, first_app_port=None):
    """Start everything, print where it answers, and run until a signal or until any part exits."""
    state_dir = Path(state_dir).resolve()
    prepare_state(state_dir)
    replica_ports = (
        [first_app_port + index for index in range(replicas)]
        if first_app_port
        else [free_port() for _ in range(replicas)]
    )
    limiter_ports = [free_port() for _ in range(replicas)]
    internal = f"127.0.0.1:{free_port()}"
    processes = {}
    signal.signal(signal.SIGTERM, interrupt)  # stopped like Ctrl-C: everything started is stopped too
    try:
        for replica_port in replica_ports:
            processes[f"replica on port {replica_port}"] = start_replica(replica_port, state_dir)
        for replica_port in replica_ports:
            wait_until_healthy(f"http://127.0.0.1:{replica_port}", processes)
        config = nginx_config(state_dir, f"{address}:{port}", internal, replica_ports, limiter_ports)
        processes["nginx"] = start_nginx(state_dir, config)
        host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
        wait_until_healthy(f"http://{host}:{port}", processes)
        print(
            f"serving http://{host}:{port} with {replicas} replicas (ports "
            f"{', '.join(map(str, replica_ports))}); logs and nginx.conf in {state_dir}",
            flush=True,
        )
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)
        exited = [name for name, process in processes.items() if process.poll() is not None]
        raise DeployError(f"{', '.join(exited)} exited; stopping the rest")
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("replicas", type=int, nargs="?", default=2, help="app processes behind nginx")
    parser.add_argument("--address", default="127.0.0.1", help="where nginx listens (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / "build" / "deploy",
        help="nginx's configuration, pid file, logs and temporary files, and the replicas' logs",
    )
    parser.add_argument(
        "--first-app-port", type=int, default=8601, help="replica i listens on this port + i (0: any free ports)"
    )
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("needs at least 1 replica")
    try:
        return serve(args.replicas, args.address, args.port, args.state_dir, args.first_app_port or None)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
