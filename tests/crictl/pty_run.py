#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal, as a person at a terminal would run `crictl exec -it`:
types each INPUT line once the output so far contains the matching WAIT text, and prints
everything the terminal showed. Exit status: the command's; 124 on a timeout.

  pty_run.py [--timeout S] [--expect WAIT INPUT]... -- COMMAND...
"""

import os
import pty
import select
import sys
import time


def main(argv):
    timeout, steps = 30.0, []
    while argv and argv[0] != "--":
        if argv[0] == "--timeout":
            timeout, argv = float(argv[1]), argv[2:]
        elif argv[0] == "--expect":
            steps.append((argv[1].encode(), argv[2].encode().decode("unicode_escape").encode()))
            argv = argv[3:]
        else:
            sys.exit(f"pty_run: unknown argument {argv[0]}")
    command = argv[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        if steps and steps[0][0] in out:
            os.write(fd, steps.pop(0)[1])
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            sys.stdout.write(out.decode(errors="replace"))
            print(f"\npty_run: timed out; still waiting for {steps[0][0] if steps else 'exit'}")
            return 124
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the command closed the terminal
                chunk = b""
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
