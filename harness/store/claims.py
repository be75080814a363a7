"""Claims: which sweep trains which configuration, when several sweeps share one store.

Before a job trains, its sweep claims the job's config hash: a RUNNING run in the job's
experiment (tag `harness.role=claim`, `config_hash`, `harness.heartbeat`), refreshed every
few seconds by a thread of the claiming process while the job trains, and deleted once the
job has ended. Another sweep that meets a live claim does not train that job: it comes back
to it later, and counts it as done elsewhere once its FINISHED run appears. A claim is stale
when its heartbeat is older than `tracking.claim_timeout_s` (from any host), or at once when
its process is gone from this host; a stale claim is taken over and the job run it was
training is marked KILLED.

Atomicity. On a SQLite store (one machine) the check and the claim are made under a lock
file beside the database, so exactly one claimant wins. On a tracking server there is no
shared lock: each claimant creates its claim, waits `SETTLE_S`, re-reads the live claims of
that hash, and the earliest (start time, then run id) wins; the others delete theirs and come
back later. Two claims that both exist when either re-reads are seen by both, who agree; a
claim created after the other's re-read has a later start time, unless the claimants' clocks
differ by more than SETTLE_S.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass

from harness.store.client import process_tags, retry
from harness.store.migrate import lock_for
from harness.store.names import CONFIG_HASH_TAG, HOST_TAG, PARENT_TAG, PID_TAG, ROLE_JOB, ROLE_TAG
from harness.store.sweeps import Store, _pid_alive
from harness.store.uri import redact

CLAIM_ROLE = "claim"
HASH_TAG = CONFIG_HASH_TAG
HEARTBEAT_TAG = "harness.heartbeat"
JOB_RUN_TAG = "harness.claim.run"  # the job run a claim is training, once it has one
SETTLE_S = 1.0


@dataclass
class Claim:
    """What try_claim found: `claimed` (run_id: our claim), `finished` (run_id: the FINISHED
    job run), or `busy` (a live claim of another process: holder says whose)."""

    kind: str
    run_id: str | None = None
    holder: str = ""


class Claims:
    """One process's claims on one store: taken, kept alive by a heartbeat thread, released."""

    def __init__(self, store: Store, timeout_s: float, log=lambda msg: None) -> None:
        self.store, self.timeout_s, self.log = store, float(timeout_s), log
        self.lock = lock_for(store.uri, ".claims.lock")
        self.held: dict[str, str] = {}  # claim run id -> config hash
        self.mutex = threading.Lock()  # one store call at a time from this process's threads
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def beat_s(self) -> float:
        return max(0.5, min(10.0, self.timeout_s / 5))

    def try_claim(
        self, chash: str, run_name: str, parent_run_id: str | None, finished_counts: bool = True
    ) -> Claim:
        """Claim `chash` unless it is FINISHED (and finished_counts) or claimed by a live run."""
        with self.mutex, self.lock or nullcontext():
            # the claims and the finished runs in one read: a job's run is FINISHED before its
            # claim is released, so a job with no claim left has its FINISHED run in it
            claims, finished = self._lookup(chash)
            live = []
            for run in claims:
                why = self._stale(run)
                if why:
                    self._take_over(run, chash, why)
                else:
                    live.append(run)
            if live:
                return Claim("busy", holder=_holder(live[0]))
            if finished_counts and finished:
                return Claim("finished", finished[0].info.run_id)
            mine = self._create(chash, run_name, parent_run_id)
        if self.lock is None:  # no shared lock: the earliest live claim wins
            time.sleep(SETTLE_S)
            with self.mutex:
                live = [r for r in self._claims(chash) if not self._stale(r)]
                winner = min(live, key=lambda r: (r.info.start_time, r.info.run_id), default=None)
                if winner is None or winner.info.run_id != mine:
                    self._drop(mine, "KILLED")
                    return Claim("busy", holder=_holder(winner) if winner else "")
                if finished_counts and (done := self._finished(chash)):
                    self._drop(mine, "KILLED")  # finished by a claim that ended as ours began
                    return Claim("finished", done)
        self._hold(mine, chash)
        return Claim("claimed", mine)

    def link(self, claim_id: str, job_run_id: str) -> None:
        """Record the job run a claim trains: a takeover marks that run KILLED."""
        with self.mutex:
            retry(lambda: self.store.client.set_tag(claim_id, JOB_RUN_TAG, job_run_id))

    def release(self, claim_id: str, status: str) -> None:
        with self.mutex, self.lock or nullcontext():
            self.held.pop(claim_id, None)
            self._drop(claim_id, status)

    def close(self) -> None:
        """Stop the heartbeat and release what is still held (an interrupted sweep)."""
        self.stop.set()
        for claim_id in list(self.held):
            try:
                self.release(claim_id, "KILLED")
            except Exception:
                pass  # the claim goes stale and is taken over

    # -- the store
    def _search(self, filter_string: str) -> list:
        return self.store._search(filter_string)

    def _lookup(self, chash: str) -> tuple[list, list]:
        """The live-looking claims of `chash` and its FINISHED job runs, in one search."""
        runs = self._search(f"tags.`{HASH_TAG}` = '{chash}'")
        claims = [
            r for r in runs
            if r.info.status == "RUNNING" and r.data.tags.get(ROLE_TAG) == CLAIM_ROLE
        ]
        finished = [
            r for r in runs
            if r.info.status == "FINISHED" and r.data.tags.get(ROLE_TAG) == ROLE_JOB
        ]
        return claims, finished

    def _finished(self, chash: str) -> str | None:
        runs = self._search(
            f"attributes.status = 'FINISHED' and tags.`{ROLE_TAG}` = 'job' "
            f"and tags.`{HASH_TAG}` = '{chash}'"
        )
        return runs[0].info.run_id if runs else None

    def _claims(self, chash: str) -> list:
        return self._search(
            f"attributes.status = 'RUNNING' and tags.`{ROLE_TAG}` = '{CLAIM_ROLE}' "
            f"and tags.`{HASH_TAG}` = '{chash}'"
        )

    def _stale(self, run) -> str | None:
        """Why a claim is no longer alive, or None."""
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if (
            tags.get(HOST_TAG) == socket.gethostname()
            and pid.isdigit()
            and not _pid_alive(int(pid))
        ):
            return f"its process {pid} on this host is gone"
        beat = float(tags.get(HEARTBEAT_TAG) or run.info.start_time / 1000)
        age = time.time() - beat
        if age > self.timeout_s:
            return f"no heartbeat for {age:.0f} s (tracking.claim_timeout_s={self.timeout_s:g})"
        return None

    def _take_over(self, run, chash: str, why: str) -> None:
        """End a stale claim, and mark KILLED the job run it was training (its own, or one
        of its sweep's runs of this config left RUNNING before the claim recorded it)."""
        client, tags = self.store.client, run.data.tags
        ids = {tags[JOB_RUN_TAG]} if tags.get(JOB_RUN_TAG) else set()
        if tags.get("harness.sweep"):
            ids |= {
                r.info.run_id
                for r in self._search(
                    f"attributes.status = 'RUNNING' and tags.`{HASH_TAG}` = '{chash}' and "
                    f"tags.`{PARENT_TAG}` = '{tags['harness.sweep']}'"
                )
            }
        killed = []
        for run_id in sorted(ids):
            if self.store.status(run_id) == "RUNNING":
                retry(lambda run_id=run_id: client.set_terminated(run_id, status="KILLED"))
                killed.append(run_id)
        self._drop(run.info.run_id, "KILLED")
        self.log(
            f"took over the stale claim of {_holder(run)} on {chash} ({why})"
            + (f"; marked its run {', '.join(killed)} KILLED" if killed else "")
        )

    def _create(self, chash: str, run_name: str, parent_run_id: str | None) -> str:
        tags = {
            **process_tags(),
            ROLE_TAG: CLAIM_ROLE,
            HASH_TAG: chash,
            HEARTBEAT_TAG: f"{time.time():.3f}",
            "harness.sweep": parent_run_id or "",
            "mlflow.note.content": f"{socket.gethostname()} pid {os.getpid()} trains {run_name}",
        }
        client, exp = self.store.client, self.store.experiment_id
        run = retry(lambda: client.create_run(exp, run_name=f"claim-{run_name}", tags=tags))
        return run.info.run_id

    def _drop(self, claim_id: str, status: str) -> None:
        """End a claim and delete it: the experiment's run list keeps only real runs."""
        retry(lambda: self.store.client.set_terminated(claim_id, status=status))
        retry(lambda: self.store.client.delete_run(claim_id))

    def _hold(self, claim_id: str, chash: str) -> None:
        with self.mutex:
            self.held[claim_id] = chash
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._beat, name="harness-claims", daemon=True
                )
                self.thread.start()

    def _beat(self) -> None:
        while not self.stop.wait(self.beat_s):
            with self.mutex:
                for claim_id in list(self.held):
                    try:
                        now = f"{time.time():.3f}"
                        retry(
                            lambda c=claim_id, t=now: self.store.client.set_tag(c, HEARTBEAT_TAG, t)
                        )
                    except Exception as exc:  # a busy store: the next beat tries again
                        why = redact(f"{type(exc).__name__}: {exc}")
                        self.log(f"claim heartbeat failed: {why[:300]}")


def _holder(run) -> str:
    tags = run.data.tags
    return f"{tags.get(HOST_TAG, '?')} pid {tags.get(PID_TAG, '?')}"
