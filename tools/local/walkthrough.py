#!/usr/bin/env python3
"""The README's walkthrough ("Try it locally"), run as a newcomer would: a fresh `make run` on free
ports with its own LOCAL_DATA_DIR, then the walkthrough's commands exactly as the README prints
them, in one shell, each answer held to the one the README states under it. Then the stack is
stopped and its log read: a normal session logs no WARN or ERROR, and no ANSI escape code.

The README's block is the first ```sh block after `<!-- walkthrough -->`. A line `# → <answer>`
states the answer of the command above it: `c` prints a body and then its HTTP status, so an
answer reads `201 {...}`; JSON in it must be found in the body (an object's keys, an array's
elements, anywhere in order), and a string "…" stands for any value, "text…" for any value that
starts with "text". An answer that is not JSON must appear in the output as it is written, each
"…" standing for any text.

Part of `make test` (make smoke-local). Exits non-zero, saying what differed, on any mismatch.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PORTS = ["APP_PORT", "DYNAMODB_PORT", "MOTO_PORT", "SIM_PORT", "SIM_CONTROL_PORT", "ISSUER_PORT"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A tracing line at WARN or ERROR (text format, as make run prints it).
LOUD = re.compile(r"^\S*\s+(WARN|ERROR)\b")
MARK = "\x1eSTEP "


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def walkthrough_block(readme):
    text = open(readme, encoding="utf-8").read()
    at = text.index("<!-- walkthrough -->")
    start = text.index("```sh\n", at) + len("```sh\n")
    return text[start:text.index("```", start)]


def steps(block):
    """(command, [answers]) in order; comment-only lines that are not answers are skipped."""
    found = []
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("# →"):
            found[-1][1].append(stripped[len("# →"):].strip())
        elif stripped and not stripped.startswith("#"):
            found.append((line, []))
    return found


def matches(expected, actual):
    if expected == "…":
        return True
    if isinstance(expected, str) and expected.endswith("…"):
        return isinstance(actual, str) and actual.startswith(expected[:-1])
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(matches(e, a) for a in actual) for e in expected)
    return expected == actual


def check(answer, output):
    """None when `output` is the answer stated, else why not."""
    wanted_status, _, wanted_body = answer.partition(" ") if re.match(r"^\d{3}\b", answer) else ("", "", answer)
    body, status = output.rstrip(), ""
    if wanted_status:
        body, _, status = body.rpartition(" ")
        if status != wanted_status:
            return f"status {status or '(none)'}, the README says {wanted_status}"
    wanted_body = wanted_body.strip()
    if not wanted_body:
        return None
    try:
        expected = json.loads(wanted_body)
    except ValueError:
        pattern = ".*?".join(re.escape(part) for part in wanted_body.split("…"))
        return None if re.search(pattern, body) else f"the output lacks {wanted_body!r}"
    try:
        actual = json.loads(body)
    except ValueError:
        return f"the output is not JSON: {body[:300]!r}"
    return None if matches(expected, actual) else f"the answer does not hold {wanted_body}"


def repository_files():
    """The files under the repository's own .local, with their times (a stack given another
    LOCAL_DATA_DIR must leave them as they are)."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, ".local")):
        for name in files:
            path = os.path.join(folder, name)
            found[path] = os.stat(path).st_mtime_ns
    return found


def clashes(running):
    """A second `make run` given any one port of the running stack stops before it starts anything,
    naming the variable, and the running stack is untouched."""
    failures = []
    for name in PORTS:
        env = dict(running, LOCAL_DATA_DIR=tempfile.mkdtemp(prefix="clash-"))
        for other in PORTS:
            env[other] = free_port()
        env[name] = running[name]
        try:
            run = subprocess.run(["bash", "tools/local/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=30, start_new_session=True)
        except subprocess.TimeoutExpired:
            failures.append(f"a second make run sharing {name} did not stop")
            continue
        said = run.stdout + run.stderr
        if run.returncode == 0 or name not in run.stderr or "ready:" in said or os.listdir(env["LOCAL_DATA_DIR"]):
            failures.append(f"a second make run sharing {name} did not stop at once naming it: {said.strip()[-400:]}")
        subprocess.run(["rm", "-rf", env["LOCAL_DATA_DIR"]], check=False)
    # And one sharing its LOCAL_DATA_DIR (its data file, its record), on ports of its own.
    env = dict(running, **{other: free_port() for other in PORTS})
    run = subprocess.run(["bash", "tools/local/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=30, start_new_session=True)
    if run.returncode == 0 or "LOCAL_DATA_DIR" not in run.stderr:
        failures.append(f"a second make run sharing LOCAL_DATA_DIR did not stop naming it: {run.stderr.strip()[-400:]}")
    health = subprocess.run(["curl", "-fsS", f"http://127.0.0.1:{running['APP_PORT']}/healthz"], capture_output=True)
    if health.returncode != 0:
        failures.append("the running stack stopped answering after the clashes")
    return failures


def feed_says_it_consumes(env):
    """`make feed` finds the running stack and says that it deletes what it prints."""
    try:
        run = subprocess.run(["make", "-s", "feed"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=8)
        said = run.stderr
    except subprocess.TimeoutExpired as e:
        said = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    if "deleted from the queue" not in said:
        return [f"make feed did not say it consumes what it prints: {said.strip()[-400:]}"]
    return []


def helpers_name_what_to_set(running):
    """With no stack answering, each helper target says so in one line naming what to set."""
    failures = []
    env = dict(running, AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{free_port()}",
               AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{free_port()}")
    for target, variable in [("items", "AWS_ENDPOINT_URL_DYNAMODB"), ("feed", "AWS_ENDPOINT_URL_SQS"),
                             ("export", "AWS_ENDPOINT_URL_DYNAMODB")]:
        args = ["make", "-s", target] + (["PROJECT=proj_demo"] if target == "export" else [])
        run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        # make's own closing line ("make: ***", "make[2]: ***" when nested) is not the helper's.
        lines = [line for line in run.stderr.splitlines() if line.strip() and not re.match(r"^make(\[\d+\])?: ", line)]
        if run.returncode == 0 or len(lines) != 1 or variable not in lines[0] or "Traceback" in run.stderr:
            failures.append(f"make {target} with nothing answering: {run.stderr.strip()[-600:]}")
    return failures


def start_stack(env, log):
    stack = subprocess.Popen(["bash", "tools/local/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        if stack.poll() is not None:
            raise SystemExit(f"walkthrough: make run exited:\n{open(log.name).read()}")
        if any(line.startswith("ready:") for line in open(log.name, encoding="utf-8", errors="replace")):
            return stack
        time.sleep(0.2)
    raise SystemExit(f"walkthrough: make run was not ready within 90 s:\n{open(log.name).read()}")


def stop_stack(stack):
    try:
        os.killpg(stack.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        stack.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(stack.pid, signal.SIGKILL)
        stack.wait()


def main():
    data = tempfile.mkdtemp(prefix="walkthrough-")
    # A normal session, the reconciler's passes included (every 5 s, so a few run meanwhile).
    env = dict(os.environ, LOCAL_DATA_DIR=data, RECONCILE_INTERVAL_SECONDS="5", RUST_LOG="info")
    for name in PORTS:
        env[name] = free_port()
    for name in ["PUBLISHER_BASE_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "LOCAL_JWT_ISSUER",
                 "LOG_FORMAT", "FAULTS"]:
        env.pop(name, None)
    log_path = os.path.join(data, "make-run.log")
    before = repository_files()
    failures = []
    with open(log_path, "w", encoding="utf-8") as log:
        stack = start_stack(env, log)
        try:
            found = steps(walkthrough_block(os.path.join(ROOT, "README.md")))
            script = "set -u\n" + "".join(f"{command}\nprintf '\\n{MARK}{n}\\n'\n"
                                         for n, (command, _) in enumerate(found))
            run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=300)
            outputs = run.stdout.split(f"\n{MARK}")
            for n, (command, answers) in enumerate(found):
                output = outputs[n].split("\n", 1)[1] if n > 0 and "\n" in outputs[n] else outputs[n]
                for answer in answers:
                    why = check(answer, output)
                    if why:
                        failures.append(f"`{command.strip()}`: {why}\n    output: {output.strip()[:600]}")
            if len(outputs) != len(found) + 1:
                failures.append(f"the walkthrough stopped early: {run.stderr[-800:]}")
            if run.stderr.strip():
                failures.append(f"the walkthrough wrote to stderr: {run.stderr.strip()[-800:]}")
            failures += clashes(env)
            failures += feed_says_it_consumes(env)
        finally:
            stop_stack(stack)
    if os.path.exists(os.path.join(data, "stack.env")):
        failures.append("the stack's record (stack.env) outlived it")
    failures += helpers_name_what_to_set(env)
    text = open(log_path, encoding="utf-8", errors="replace").read()
    loud = [line for line in text.splitlines() if LOUD.match(ANSI.sub("", line))]
    if loud:
        failures.append("a normal session logged WARN or ERROR:\n    " + "\n    ".join(loud[:20]))
    if ANSI.search(text):
        failures.append("the log holds ANSI escape codes")
    if repository_files() != before:
        failures.append("the stack wrote under the repository's .local, not only its LOCAL_DATA_DIR")
    if failures:
        print(f"walkthrough: {len(failures)} step(s) differ from the README (log: {log_path}):", file=sys.stderr)
        for failure in failures:
            print(f"- {failure}", file=sys.stderr)
        return 1
    print(f"walkthrough: {len(found)} steps, every answer as the README states it; the log calm and plain")
    subprocess.run(["rm", "-rf", data], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
