#!/usr/bin/env python3
"""Soak: mixed load (logins, verifies, refreshes, logouts, admin calls) on
several connections for DURATION seconds against a real daemon; counts
unexpected errors and samples RSS. `soak.py 600` is the ten-minute run of
RELIABILITY.md; test_soak.py runs one minute in the suite."""
import random
import sys
import threading
import time

from conftest import PASSWORD, Connection, Daemon


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def soak(duration, workers=6):
    # Limits out of the way: the soak measures stability under mixed load
    # (its few sessions refresh faster than refresh_rate_limit allows).
    daemon = Daemon("--bcrypt-cost", "10", "--login-max-failures", "1000000", "--client-max-failures", "1000000",
                    "--refresh-rate-limit", "1000000")
    stop = threading.Event()
    counts = {"calls": 0, "unexpected": 0}
    problems = []
    lock = threading.Lock()

    def worker(index):
        rng = random.Random(index)
        rpc = Connection(daemon.socket)
        email = f"soak{index}@example.com"
        rpc.result("user.create", {"email": email, "password": PASSWORD})
        tokens = rpc.result("auth.login", {"email": email, "password": PASSWORD})
        calls = 0
        while not stop.is_set():
            action = rng.random()
            try:
                if action < 0.70:
                    answer = rpc.call("token.verify", {"token": tokens["access_token"]})
                    ok = answer.get("result", {}).get("user", {}).get("email") == email
                elif action < 0.82:
                    answer = rpc.call("auth.refresh", {"refresh_token": tokens["refresh_token"]})
                    ok = "result" in answer
                    if ok:
                        tokens["refresh_token"] = answer["result"]["refresh_token"]
                        tokens["access_token"] = answer["result"]["access_token"]
                elif action < 0.86:
                    answer = rpc.call("auth.logout", {"refresh_token": tokens["refresh_token"]})
                    ok = "result" in answer
                    tokens = rpc.result("auth.login", {"email": email, "password": PASSWORD})
                elif action < 0.90:
                    answer = rpc.call("auth.login", {"email": email, "password": "wrong password"})
                    ok = answer.get("error", {}).get("data", {}).get("reason") == "invalid_credentials"
                elif action < 0.95:
                    answer = rpc.call("user.list", {"limit": 10})
                    ok = "result" in answer
                else:
                    answer = rpc.call("stats")
                    ok = "result" in answer
            except Exception as error:  # noqa: BLE001 - any failure counts
                answer, ok = {"exception": repr(error)}, False
            calls += 1
            if not ok:
                with lock:
                    counts["unexpected"] += 1
                    if len(problems) < 5:
                        problems.append(answer)
        with lock:
            counts["calls"] += calls

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    samples = []
    started = time.time()
    while time.time() - started < duration:
        time.sleep(min(5, duration / 12))
        samples.append(rss_kib(daemon.process.pid))
    stop.set()
    for thread in threads:
        thread.join()
    alive = daemon.process.poll() is None
    daemon.stop()
    warm = samples[len(samples) // 4:]  # after warm-up
    return {"seconds": duration, "calls": counts["calls"], "unexpected": counts["unexpected"], "problems": problems,
            "rss_warm_kib": warm[0], "rss_end_kib": warm[-1], "rss_max_kib": max(warm), "alive": alive}


if __name__ == "__main__":
    result = soak(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
    print(result)
    sys.exit(0 if result["unexpected"] == 0 and result["alive"] else 1)
