"""A local-command actuator: run a program (argument list, never a shell) to open or lock the door.

The decision reaches the program through environment variables (``EDGEFAS_ACTION``,
``EDGEFAS_DURATION_S``, ``EDGEFAS_ATTEMPT_ID``, ``EDGEFAS_SCORE``) rather than by formatting its
arguments, so nothing the pipeline produces can change what is executed. Exit status 0 within the
timeout is success; a non-zero status or a missing program is a failure (the door stays locked). A
program killed on the timeout, or killed by a signal, may have switched the door before it died: that
outcome is unknown (:class:`OutcomeUnknownError`), and the audit says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

from edge.kiosk.actuators.actuator import ActuatorError, ActuatorHealth, OutcomeUnknownError
from edge.kiosk.toml_table import TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 200  # enough of the program's stderr to say why it failed in one line


@dataclass(frozen=True)
class CommandConfig:
    unlock: tuple[str, ...]  # argv run on a grant
    lock: tuple[str, ...] = ()  # argv run to lock early; empty = nothing to run
    timeout_s: float = 5.0  # the program is killed after this long; its outcome is then unknown

    @classmethod
    def from_table(cls, table: TomlTable) -> CommandConfig:
        return cls(unlock=table.strings("unlock", required=True, non_empty=True),
                   lock=table.strings("lock", ()), timeout_s=table.number("timeout_s", 5.0))


class Command:
    kind = "command"

    def __init__(self, config: CommandConfig) -> None:
        self.config = config
        self._last = "not run yet"
        self._failed = False

    def _run(self, argv: tuple[str, ...], env_extra: dict[str, str]) -> None:
        env = dict(os.environ, **env_extra)
        name = argv[0]
        try:
            done = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.config.timeout_s, check=False, shell=False)
        except subprocess.TimeoutExpired:
            self._record(f"{name} timed out", failed=True)
            raise OutcomeUnknownError(f"actuator command {name} did not finish within {self.config.timeout_s:g} s "
                                      "and was killed; it may have switched the door (outcome unknown)") from None
        except OSError as exc:
            self._record(f"{name} could not start", failed=True)
            raise ActuatorError(f"actuator command {name} could not start ({exc.strerror}); "
                                "check [actuator] unlock in the config") from None
        if done.returncode < 0:
            self._record(f"{name} killed by signal {-done.returncode}", failed=True)
            raise OutcomeUnknownError(f"actuator command {name} was killed by signal {-done.returncode}; it may "
                                      "have switched the door (outcome unknown)")
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-STDERR_TAIL_CHARS:]
            self._record(f"{name} exited {done.returncode}", failed=True)
            raise ActuatorError(f"actuator command {name} exited with status {done.returncode}"
                                + (f" ({tail})" if tail else "") + "; the door stays locked")
        self._record(f"{name} ok", failed=False)

    def _record(self, last: str, *, failed: bool) -> None:
        self._last, self._failed = last, failed

    def unlock(self, duration_s: float, decision: Decision) -> None:
        self._run(self.config.unlock, {
            "EDGEFAS_ACTION": "unlock", "EDGEFAS_DURATION_S": f"{duration_s:g}",
            "EDGEFAS_ATTEMPT_ID": str(decision.attempt_id),
            "EDGEFAS_SCORE": "" if decision.score is None else f"{decision.score:.6f}"})

    def lock(self) -> None:
        if self.config.lock:
            self._run(self.config.lock, {"EDGEFAS_ACTION": "lock"})

    def health(self) -> ActuatorHealth:
        """Not ready when the unlock program cannot be found, or the last command did not succeed (a
        program that failed once is likely to fail the next grant too; an operator should look)."""
        program = self.config.unlock[0]
        line = f"command {program}: {self._last}"
        if shutil.which(program) is None:
            return ActuatorHealth(False, f"command {program}: not found or not executable")
        return ActuatorHealth(not self._failed, line)

    def close(self) -> None:
        pass


def open_command(config: CommandConfig) -> Command:
    return Command(config)
