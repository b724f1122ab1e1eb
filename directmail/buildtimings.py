"""Where a run's build step spent its time, kept beside the project for whoever asks why a run was slow.

dbt's own `target/run_results.json` holds only its last invocation, and a run with address validation
makes two builds around the validation: `.directmail/builds/<campaign>.json` keeps, for the campaign's
latest run that built, each build's selection, wall seconds and dbt's execution time per node, and the
validation's count and seconds. Written after the build step; nothing reads it back (bench/day2.py and
people do).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from directmail.address_validations import ValidationReport
from directmail.builder import Built


@dataclass
class BuildTimings:
    run_id: str
    builds: list[dict[str, Any]] = field(default_factory=list)
    addresses: ValidationReport | None = None

    def add_build(self, select: list[str], exclude: list[str], built: Built) -> None:
        self.builds.append(
            {"select": select, "exclude": exclude, "seconds": built.seconds, "nodes": built.node_seconds}
        )

    def as_dict(self) -> dict[str, Any]:
        validation = None
        if self.addresses is not None:
            validation = {
                "validated": self.addresses.validated,
                "replaced": self.addresses.replaced,
                "seconds": round(self.addresses.seconds, 3),
            }
        return {"run_id": self.run_id, "builds": self.builds, "address_validation": validation}

    def save(self, path: Path) -> None:
        """Written whole under a temporary name, then renamed: a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.as_dict(), indent=1), encoding="utf-8")
        temporary.replace(path)
