"""What commands need of dbt's parse, kept between commands: reading a project then needs no dbt.

dbt costs ~3 s to import and ~1.5 s to parse, every command. After a parse, the few things the runner uses
(per model, seed and snapshot: name, type, unique id, relation, meta, YAML file, parents; and the target:
adapter type, target name, DuckDB path and resource settings) are written to
`.directmail/cache/dbt-<target>.json` under a key: a digest of everything that can change the parse.
A command whose key matches reads that file with `json` alone; any difference, or an unreadable file,
means dbt parses again (never a stale answer). See docs/performance.md#start-up.

The key covers: the installed dbt distributions (names and versions), the `--target`, the project and
profiles directories, profiles.yml and dbt_project.yml (bytes), packages.yml, dependencies.yml,
package-lock.yml, selectors.yml and .dbtignore (bytes), every file under the project's model, seed,
macro, snapshot, test, analysis and docs paths and the installed packages (path and bytes; CSV seeds by
path, size and mtime), the values of the environment variables those files read with `env_var('…')`,
and every `DBT_*` variable. Values enter the key only as a digest: the cache holds no secret. A file
calling `env_var` with a name that is not a literal makes the project uncacheable (dbt always parses).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from directmail.errors import Finding

FORMAT = 1
CACHE_DIR = Path(".directmail") / "cache"

# dbt's resource paths and their defaults (dbt_project.yml); docs-paths defaults to all of them.
_PATH_KEYS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "snapshot-paths": ["snapshots"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "docs-paths": [],
}
_ROOT_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml", "selectors.yml", ".dbtignore")
_STAT_ONLY = (".csv", ".parquet", ".gz")  # seed data: large, and never rendered (no env_var)
_YAML = (".yml", ".yaml")
_ENV_CALL = re.compile(r"env_var\s*\(")
_ENV_LITERAL = re.compile(r"""env_var\s*\(\s*(['"])([^'"]+)\1""")
_SKIP_DIRS = {"__pycache__", "node_modules"}
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # dbt's loader


@dataclass(frozen=True)
class NodeInfo:
    """A model, seed or snapshot as the runner needs it (a small part of dbt's manifest node)."""

    name: str
    resource_type: str
    unique_id: str
    relation_name: str | None
    meta: dict[str, Any]
    yaml_file: str  # the YAML that patches it, else its own file (campaign findings name this file)
    depends_on: tuple[str, ...] = ()


def nodes_from_manifest(manifest: Any) -> list[NodeInfo]:
    """The models, seeds and snapshots of a parsed dbt manifest, in the manifest's order."""
    nodes = []
    for node in manifest.nodes.values():
        if node.resource_type not in ("model", "seed", "snapshot"):
            continue
        depends_on = getattr(node, "depends_on", None)
        nodes.append(
            NodeInfo(
                name=node.name,
                resource_type=str(node.resource_type),
                unique_id=node.unique_id,
                relation_name=getattr(node, "relation_name", None),
                meta=dict(node.config.meta or {}),
                yaml_file=(node.patch_path or node.original_file_path).split("://", 1)[-1],
                depends_on=tuple(getattr(depends_on, "nodes", None) or ()),
            )
        )
    return nodes


@dataclass
class Fingerprint:
    """Digests of what the target and the parse depend on (None: not cacheable), and the project's YAML."""

    profile_key: str | None
    parse_key: str | None
    yaml_files: dict[str, bytes] = field(default_factory=dict)  # display name → bytes, for the pre-check


def fingerprint(project_dir: Path, profiles_dir: Path, target: str | None) -> Fingerprint:
    """Everything that can change dbt's parse of this project, reduced to two digests."""
    env_names: set[str] = set()
    dynamic = False
    yaml_files: dict[str, bytes] = {}

    def read(path: Path, display: str) -> bytes | None:
        nonlocal dynamic
        try:
            data = path.read_bytes()
        except OSError:
            return None
        text = data.decode("utf-8", "replace")
        calls = len(_ENV_CALL.findall(text))
        literals = _ENV_LITERAL.findall(text)
        env_names.update(name for _, name in literals)
        dynamic = dynamic or calls > len(literals)
        if path.suffix in _YAML:
            yaml_files[display] = data
        return data

    profiles_file = profiles_dir / "profiles.yml"
    profile_parts: dict[str, Any] = {
        "format": FORMAT,
        "dbt": _dbt_distributions(),
        "project_dir": str(project_dir),
        "profiles_file": str(profiles_file),
        "target": target,
        "profiles.yml": _file_digest(read(profiles_file, _display(profiles_file, project_dir))),
        "dbt_project.yml": _file_digest(read(project_dir / "dbt_project.yml", "dbt_project.yml")),
    }
    profile_parts["env"] = _env_digest(env_names)
    profile_dynamic = dynamic
    settings = _project_settings(yaml_files.get("dbt_project.yml"))
    files: list[tuple[Any, ...]] = []
    for name in _ROOT_FILES:
        data = read(project_dir / name, name)
        files.append((name, _file_digest(data)))
    for directory in _walked_directories(project_dir, settings):
        for path in _files_under(directory, project_dir, settings):
            display = _display(path, project_dir)
            if path.suffix.lower() in _STAT_ONLY:
                stat = path.stat()
                files.append((display, stat.st_size, stat.st_mtime_ns))
            else:
                files.append((display, _file_digest(read(path, display))))
    profile_key = None if profile_dynamic else _digest(_canonical(profile_parts))
    parse_parts = {"profile": profile_key, "vars": None, "files": files, "env": _env_digest(env_names)}
    parse_key = None if dynamic or profile_key is None else _digest(_canonical(parse_parts))
    return Fingerprint(profile_key, parse_key, yaml_files)


def yaml_syntax_findings(yaml_files: dict[str, bytes]) -> list[Finding]:
    """YAML that does not load, named by file and line: found before dbt is imported (dbt would stop at
    the same error, with the same loader, after ~4 s)."""
    findings = []
    for display, data in yaml_files.items():
        try:
            yaml.load(data, Loader=_SAFE_LOADER)  # a safe loader (C when built)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            findings.append(Finding(display, where, f"invalid YAML: {problem}"))
    return findings


class ParseCache:
    """The cache file of one project and `--target`; every read checks the key, every failure is a miss."""

    def __init__(self, project_dir: Path, profiles_dir: Path, target: str | None):
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target = target
        self.path = project_dir / CACHE_DIR / f"dbt-{_digest((target or '').encode())[:12]}.json"
        self._fingerprint: Fingerprint | None = None

    @property
    def fingerprint(self) -> Fingerprint:
        """Computed once, before any parse: a file changed during the parse then misses next time."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.project_dir, self.profiles_dir, self.target)
        return self._fingerprint

    def nodes(self) -> list[NodeInfo] | None:
        entry = self._entry("nodes", self.fingerprint.parse_key)
        if entry is None:
            return None
        try:
            return [
                NodeInfo(
                    name=str(item["name"]),
                    resource_type=str(item["resource_type"]),
                    unique_id=str(item["unique_id"]),
                    relation_name=item["relation_name"],
                    meta=_decode(item["meta"]),
                    yaml_file=str(item["yaml_file"]),
                    depends_on=tuple(str(uid) for uid in item["depends_on"]),
                )
                for item in entry
            ]
        except (KeyError, TypeError, ValueError):
            return None

    def target_entry(self) -> dict[str, Any] | None:
        entry = self._entry("target", self.fingerprint.profile_key)
        return _decode(entry) if isinstance(entry, dict) else None

    def store_nodes(self, nodes: list[NodeInfo]) -> None:
        try:
            value = [
                {
                    "name": n.name,
                    "resource_type": n.resource_type,
                    "unique_id": n.unique_id,
                    "relation_name": n.relation_name,
                    "meta": _encode(n.meta),
                    "yaml_file": n.yaml_file,
                    "depends_on": list(n.depends_on),
                }
                for n in nodes
            ]
        except TypeError:  # a meta value JSON cannot carry exactly: not cached, parsed every time
            return
        self._store("nodes", self.fingerprint.parse_key, value)

    def store_target(self, target: dict[str, Any]) -> None:
        try:
            value = _encode(target)
        except TypeError:
            return
        self._store("target", self.fingerprint.profile_key, value)

    def compiled_entry(self) -> dict[str, dict[str, str]]:
        """Compiled SQL by unique id, each with the parse key and code digest it was compiled under (the
        target's relation names are in it, so the whole section is kept per profile)."""
        entry = self._entry("compiled", self.fingerprint.profile_key)
        return entry if isinstance(entry, dict) else {}

    def store_compiled(self, compiled: dict[str, dict[str, str]]) -> None:
        self._store("compiled", self.fingerprint.profile_key, compiled)

    def _entry(self, section: str, key: str | None) -> Any:
        if key is None:
            return None
        document = self._read()
        entry = document.get(section)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        return entry.get("value")

    def _read(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return {}
        return document

    def _store(self, section: str, key: str | None, value: Any) -> None:
        """Atomic replace; a project directory that cannot be written to just stays uncached."""
        if key is None:
            return
        document = self._read() or {"format": FORMAT}
        document[section] = {"key": key, "value": value}
        # One temporary name per process and thread (a `serve` process loads projects in threads).
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(document, ensure_ascii=False, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)


def _dbt_distributions() -> list[str]:
    """dbt's installed distributions by directory name (name and version), without importlib.metadata's
    scan of every distribution (~0.2 s)."""
    found: set[str] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found.update(n for n in names if n.startswith("dbt") and n.endswith((".dist-info", ".egg-info")))
    return sorted(found)


def _project_settings(data: bytes | None) -> dict[str, Any]:
    try:
        loaded = yaml.load(data or b"", Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _setting_paths(settings: dict[str, Any], key: str, default: list[str]) -> list[str]:
    value = settings.get(key, default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return default
    return value


def _walked_directories(project_dir: Path, settings: dict[str, Any]) -> list[Path]:
    """The resource paths dbt reads (docs-paths defaults to all of them) and the installed packages."""
    names: list[str] = []
    for key, default in _PATH_KEYS.items():
        names += _setting_paths(settings, key, default)
    install = settings.get("packages-install-path", "dbt_packages")
    names.append(install if isinstance(install, str) else "dbt_packages")
    directories: list[Path] = []
    for name in names:
        path = (project_dir / name).resolve()
        if path.is_dir() and not any(path == seen or seen in path.parents for seen in directories):
            directories = [d for d in directories if path not in d.parents] + [path]
    return sorted(directories)


def _files_under(directory: Path, project_dir: Path, settings: dict[str, Any]) -> list[Path]:
    """Every file, sorted; hidden entries, caches and dbt's own output directories skipped."""
    skipped = {
        (project_dir / str(settings.get("target-path", "target"))).resolve(),
        (project_dir / str(settings.get("log-path", "logs"))).resolve(),
        (project_dir / ".directmail").resolve(),
    }
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        base = Path(root)
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS and base / d not in skipped
        ]
        found += [base / f for f in files if not f.startswith(".")]
    return sorted(found)


def _display(path: Path, project_dir: Path) -> str:
    try:
        return path.resolve().relative_to(project_dir).as_posix()
    except ValueError:
        return str(path)


def _env_digest(names: set[str]) -> str:
    """The values (as a digest) of the variables the files read, and of every DBT_* variable."""
    chosen = sorted(names | {name for name in os.environ if name.startswith("DBT_")})
    return _digest(_canonical([[name, os.environ.get(name)] for name in chosen]))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(data: bytes | None) -> str | None:
    return None if data is None else _digest(data)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode()


def _encode(value: Any) -> Any:
    """YAML values as JSON, with dates and timestamps tagged so that they come back as they were.

    Raises TypeError for anything else JSON would change (a non-string key, bytes, a set)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("non-string key")
        encoded = {key: _encode(item) for key, item in value.items()}
        return {"$dict": encoded} if len(value) == 1 and next(iter(value)).startswith("$") else encoded
    raise TypeError(f"{type(value).__name__} is not cached")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, item),) = value.items()
        if tag == "$datetime":
            return datetime.fromisoformat(item)
        if tag == "$date":
            return date.fromisoformat(item)
        if tag == "$dict":
            return {key: _decode(inner) for key, inner in item.items()}
    return {key: _decode(item) for key, item in value.items()}
