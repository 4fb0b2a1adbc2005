"""Runs CLI invocations in forked child processes of one warm interpreter (test helper).

Starting Python and importing the framework costs seconds per process; the
corpus has close to a hundred cases. This server imports once, then for each
request (one JSON line on stdin: argv, cwd, fake) forks a child that calls the
real `framework.cli.main(argv)` with its stdout and stderr going to files, and
replies with the child's exit status and output (one JSON line on stdout).
Plugins are not loaded (FRAMEWORK_LOAD_PLUGINS is empty); a `fake` request
registers tests/fake_backend.py in the child only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["FRAMEWORK_LOAD_PLUGINS"] = ""

import framework  # noqa: E402
import framework.cli  # noqa: E402
import framework.runner  # noqa: E402, F401  (warm: the CLI imports it lazily)
import framework.simulate  # noqa: E402, F401
from fake_backend import FakePlugin  # noqa: E402


def _child(argv: list[str], cwd: str, fake: bool, out: str, err: str) -> int:
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if fake:
        framework.register_plugin(FakePlugin(), name="fake")
    # What the interpreter does around `sys.exit(main())`.
    try:
        return framework.cli.main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


def serve() -> None:
    tmp = tempfile.mkdtemp(prefix="framework-fork-server-")
    out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request["argv"], request["cwd"], request.get("fake", False), out, err)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)
        _, status = os.waitpid(pid, 0)
        reply = {
            "id": request["id"],
            "returncode": os.waitstatus_to_exitcode(status),
            "stdout": open(out, encoding="utf-8", errors="replace").read(),
            "stderr": open(err, encoding="utf-8", errors="replace").read(),
        }
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
