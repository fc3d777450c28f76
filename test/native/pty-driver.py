"""Run a command on a fresh pseudo-terminal and drive it by a script.

Used by launch.test.ts to give cordon-launch --pty a real terminal. Argument:
one JSON object
  {"argv": [...], "winsize": [rows, cols], "steps": [...], "timeout": seconds}
steps, in order:
  {"wait_for": "text"}     wait until the output contains text (from the start)
  {"wait_dead": re}        wait until the pid the regex's group 1 finds in the output is gone or a zombie
  {"poke_until": "text"}   write "\r" (or step["write"]) every 0.3 s (step["every"]) until the output contains text
  {"write": "bytes"}       write to the terminal (latin-1)
  {"winsize": [r, c]}      resize the terminal (the kernel sends SIGWINCH)
  {"sleep": seconds}
  {"record_lflag": "name"} store the terminal's c_lflag under name
  {"kill_child": signal}   signal the command itself (not the foreground job)
  {"kill_output_pid": re, "signal": n}  signal the pid the regex's group 1 finds in the output
  {"wait_restored": s}     wait until the terminal is back in canonical mode
Prints one JSON object: output (latin-1), status (exit code, or -signal),
termios_before / termios_after (full lists), recorded lflags, error (if any).
"""

import fcntl
import json
import os
import re
import select
import signal
import struct
import sys
import termios
import time


def session_states(root):
    """The command and its descendants with their state (R, S, T, Z, D...), for a failure report."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        procs[int(d)] = (rest[0], int(rest[1]), rest[2], stat[stat.find("(") + 1:stat.rfind(")")])
    keep = {root}
    changed = True
    while changed:
        changed = False
        for p, (_, ppid, _, _) in procs.items():
            if ppid in keep and p not in keep:
                keep.add(p)
                changed = True
    rows = ["%d %s pgrp=%s %s" % (p, procs[p][0], procs[p][2], procs[p][3]) for p in sorted(keep) if p in procs]
    return "; processes: " + (", ".join(rows) if rows else "none")


def main():
    cfg = json.loads(sys.argv[1])
    deadline = time.monotonic() + cfg.get("timeout", 20)
    rows, cols = cfg.get("winsize", [24, 80])

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    before = termios.tcgetattr(slave)

    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(master)
        os.close(slave)
        os.execv(cfg["argv"][0], cfg["argv"])

    # Keep our slave descriptor: termios stays readable after the command exits.
    out = bytearray()
    result = {"recorded": {}}
    status = None

    def pump(wait):
        nonlocal status
        r, _, _ = select.select([master], [], [], wait)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            out.extend(data)
        if status is None:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                status = os.waitstatus_to_exitcode(st)

    try:
        for step in cfg.get("steps", []):
            if "wait_for" in step:
                want = step["wait_for"].encode("latin-1")
                while want not in out:
                    if time.monotonic() > deadline:
                        raise TimeoutError("waiting for %r" % step["wait_for"])
                    pump(0.05)
            elif "poke_until" in step:
                # Press Enter (or "write") every "every" seconds until the text shows:
                # bash reports a job's end only at a prompt, whenever it got round to reaping it.
                want = step["poke_until"].encode("latin-1")
                nxt = 0.0
                while want not in out:
                    now = time.monotonic()
                    if now > deadline:
                        raise TimeoutError("waiting for %r" % step["poke_until"])
                    if now >= nxt:
                        os.write(master, step.get("write", "\r").encode("latin-1"))
                        nxt = now + step.get("every", 0.3)
                    pump(0.05)
            elif "wait_dead" in step:
                # The process whose pid the regex's group 1 finds in the output has died (gone, or a zombie).
                m = re.search(step["wait_dead"], out.decode("latin-1"))
                if not m:
                    raise ValueError("no pid matching %r in the output" % step["wait_dead"])
                while True:
                    try:
                        with open("/proc/%s/stat" % m.group(1)) as f:
                            st = f.read()
                        if st[st.rfind(")") + 2:].split()[0] == "Z":
                            break
                    except OSError:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError("pid %s did not die" % m.group(1))
                    pump(0.02)
            elif "write" in step:
                os.write(master, step["write"].encode("latin-1"))
            elif "winsize" in step:
                r, c = step["winsize"]
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))
            elif "sleep" in step:
                end = time.monotonic() + step["sleep"]
                while time.monotonic() < end:
                    pump(0.02)
            elif "record_lflag" in step:
                result["recorded"][step["record_lflag"]] = termios.tcgetattr(slave)[3]
            elif "kill_child" in step:
                os.kill(pid, step["kill_child"])
            elif "kill_output_pid" in step:
                m = re.search(step["kill_output_pid"], out.decode("latin-1"))
                if not m:
                    raise ValueError("no pid matching %r in the output" % step["kill_output_pid"])
                os.kill(int(m.group(1)), step["signal"])
            elif "wait_restored" in step:
                end = time.monotonic() + step["wait_restored"]
                while not termios.tcgetattr(slave)[3] & termios.ICANON:
                    if time.monotonic() > end:
                        raise TimeoutError("terminal not restored")
                    pump(0.02)
        while status is None:
            if time.monotonic() > deadline:
                raise TimeoutError("command did not exit")
            pump(0.05)
        # Whatever is still buffered in the terminal.
        while select.select([master], [], [], 0.1)[0]:
            data = os.read(master, 65536)
            if not data:
                break
            out.extend(data)
    except Exception as e:  # report, never hang the test
        result["error"] = "%s: %s" % (type(e).__name__, e) + session_states(pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass

    result["output"] = out.decode("latin-1")
    result["status"] = status
    result["termios_before"] = before
    result["termios_after"] = termios.tcgetattr(slave)
    print(json.dumps(result, default=lambda b: list(b)))


main()
