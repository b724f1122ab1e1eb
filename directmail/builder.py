"""dbt, in-process: parse the project, build a campaign with its upstream, and find the target's warehouse.

In-process invocation costs ~0.2 s per call after the first, against ~4 s for the `dbt` CLI. dbt is imported
only where a command parses, compiles or builds: what reading a project needs of the parse and of the
target is kept in the parse cache (directmail/parsecache.py) while nothing it depends on changes.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from directmail.errors import BuildError, ConfigError, Finding
from directmail.parsecache import NodeInfo, ParseCache, nodes_from_manifest, yaml_syntax_findings

# The keys of a DuckDB profile's `settings:` the runner applies too (its memory stays bounded like dbt's).
RESOURCE_SETTINGS = ("memory_limit", "threads", "temp_directory", "max_temp_directory_size")


@dataclass(frozen=True)
class RunnerCredentials:
    """What the runner uses of the target's credentials: the DuckDB file and its resource settings, a
    PostgreSQL server's host, port, user, database and sslmode, or a Spark target's method and session
    parameters (`connection`).

    Only these are kept (and cached): never a password, token or key of the profile. A PostgreSQL
    password is held in memory only (`password`), and only when it is not libpq's own PGPASSWORD, which
    the connection reads from the environment itself; such a target is never cached."""

    path: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    connection: dict[str, Any] = field(default_factory=dict)
    password: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class TargetInfo:
    """What the runner needs to know of the dbt target to open the same warehouse."""

    adapter_type: str
    name: str
    credentials: Any  # RunnerCredentials (anything with `path` and optionally `settings`)

    @property
    def duckdb_path(self) -> str:
        return str(self.credentials.path)


@dataclass
class Built:
    """What a build tells the runner, by unique id: compiled SQL and the relation each node was built as;
    and where its time went (dbt's own execution time of each node, and the invocation's wall time)."""

    compiled: dict[str, str]
    relations: dict[str, str]
    node_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class DbtProject:
    def __init__(self, project_dir: Path, target: str | None = None):
        self.project_dir = project_dir.resolve()
        self.target = target
        self._target_info: TargetInfo | None = None
        self._manifest: tuple[str, Any] | None = None  # the last parse: its --vars and dbt's manifest
        self.cache = ParseCache(self.project_dir, self.profiles_dir, target)

    def _common_args(self) -> list[str]:
        args = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        return [*args, "--target", self.target] if self.target else args

    @property
    def profiles_dir(self) -> Path:
        configured = os.environ.get("DBT_PROFILES_DIR")
        return Path(configured) if configured else self.project_dir

    def _invoke(self, command: list[str], manifest: Any = None) -> Any:
        from dbt.cli.main import dbtRunner

        target = self.target_info()
        if target.adapter_type == "spark":  # the runner's session first: dbt-spark's getOrCreate reuses it
            from directmail.warehouse.spark_warehouse import spark_session

            spark_session(target, self.project_dir)

        try:
            with contextlib.chdir(self.project_dir):
                flags = [
                    "--log-level",
                    "none",
                    "--no-use-colors",
                    "--log-path",
                    str(self.project_dir / "logs"),
                ]
                return dbtRunner(manifest=manifest).invoke([*flags, *command, *self._common_args()])
        finally:
            release_connections()

    def parse(self, run_vars: dict[str, Any] | None = None) -> Any:
        """The dbt manifest (nodes with their resolved config, including meta), parsed once per process
        and set of vars: a run's builds (two with address validation) and a proof's relations share it.

        dbt parses the whole project again whenever --vars differ from its last parse (every run has its
        own run_time), and even an unchanged partial parse reads and checks every file; handing the
        manifest to each invocation pays that once."""
        key = json.dumps(run_vars or {}, sort_keys=True)
        if self._manifest is None or self._manifest[0] != key:
            result = self._invoke(["parse", *(["--vars", json.dumps(run_vars)] if run_vars else [])])
            if not result.success:
                raise ConfigError(
                    [Finding("dbt_project.yml", "", f"dbt could not parse the project: {result.exception}")]
                )
            self._manifest = (key, result.result)
        return self._manifest[1]

    def cached_nodes(self) -> list[NodeInfo] | None:
        """The models, seeds and snapshots from the parse cache, or None when anything that can change
        the parse changed since (then `parse_nodes` asks dbt)."""
        return self.cache.nodes()

    def yaml_findings(self) -> list[Finding]:
        """YAML syntax errors in the project's files, found without dbt (file and line)."""
        return yaml_syntax_findings(self.cache.fingerprint.yaml_files)

    def parse_nodes(self) -> list[NodeInfo]:
        """dbt parse, then the cache refreshed (the target too: the next `report` needs no dbt)."""
        nodes = nodes_from_manifest(self.parse())
        self.cache.store_nodes(nodes)
        self.target_info()
        return nodes

    def build(
        self,
        select: list[str],
        run_vars: dict[str, Any],
        with_tests: bool = True,
        exclude: list[str] | None = None,
    ) -> Built:
        """Build the selection (with its data and unit tests unless told otherwise).

        Tests are selected cautiously: a test runs only when every node it references is in this build.
        dbt's default (eager) also picks a test that merely touches the selection, such as a relationships
        test from a model nobody selected onto a selected one; on a warehouse where that other model was
        never built, the test fails on a missing table. (`buildable` would also admit tests on unselected
        ancestors; the selection here always carries its ancestors, and `cautious` says the rule exactly.)
        """
        skip = (
            [] if with_tests else ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
        )
        selection = ["--select", *select, "--indirect-selection", "cautious", *skip]
        if exclude:  # built (and tested) by an earlier build of this run
            selection += ["--exclude", *exclude]
        started = time.perf_counter()
        try:
            manifest = self.parse(run_vars)
        except ConfigError as error:  # as when dbt build parsed for itself: the build failed
            raise BuildError(f"dbt build failed: {error.findings[0].reason}") from None
        result = self._invoke(["build", *selection, "--vars", json.dumps(run_vars)], manifest)
        if result.exception is not None:
            raise BuildError(f"dbt build failed: {result.exception}")
        failures, built = [], Built({}, {})
        for node_result in result.result.results:
            node = node_result.node
            if str(node_result.status) in ("error", "fail"):
                failures.append(f"{node.unique_id}: {node_result.message}")
            if getattr(node, "compiled_code", None):
                built.compiled[node.unique_id] = node.compiled_code
            if getattr(node, "relation_name", None):
                built.relations[node.unique_id] = node.relation_name
            built.node_seconds[node.unique_id] = round(float(node_result.execution_time or 0.0), 3)
        built.seconds = round(time.perf_counter() - started, 3)
        if failures or not result.success:
            raise BuildError("dbt build failed:\n  " + "\n  ".join(failures or ["see logs/dbt.log"]))
        return built

    def code_fingerprint(self, unique_id: str, run_vars: dict[str, Any]) -> dict[str, str]:
        """The code a model's columns come from: the sha256 of its SQL and of every model, seed, snapshot
        and macro upstream of it, by unique id. Equal fingerprints: the tables as last built have the
        columns the code makes now (a source's columns are read live)."""
        manifest = self.parse(run_vars)
        found: dict[str, str] = {}
        pending = [unique_id]
        while pending:
            current = pending.pop()
            if current in found:
                continue
            node = manifest.nodes.get(current) or manifest.macros.get(current)
            if node is None:  # a source: read live
                continue
            checksum = getattr(node, "checksum", None)
            if checksum is not None:
                found[current] = checksum.checksum
            else:  # a macro
                found[current] = hashlib.sha256(node.macro_sql.encode()).hexdigest()
            depends_on = getattr(node, "depends_on", None)
            pending += [*getattr(depends_on, "nodes", []), *getattr(depends_on, "macros", [])]
        return found

    def compiled(self, models: dict[str, str]) -> dict[str, str]:
        """Compiled SQL (no vars) of models given as {unique id: name}, compiling only what changed: a
        model's SQL is reused while the project's files are unchanged (no dbt at all), or, after a change
        elsewhere, while its own code and everything upstream of it is (see `code_fingerprint`)."""
        cached = self.cache.compiled_entry()
        parse_key = self.cache.fingerprint.parse_key
        found = {
            uid: entry["sql"]
            for uid, entry in cached.items()
            if uid in models and parse_key is not None and entry.get("parse") == parse_key
        }
        if len(found) == len(models):
            return found
        codes = {uid: _digest(self.code_fingerprint(uid, {})) for uid in models}
        for uid in models:
            entry = cached.get(uid, {})
            if uid not in found and entry.get("code") == codes[uid] and "sql" in entry:
                found[uid] = entry["sql"]
        missing = [name for uid, name in models.items() if uid not in found]
        if missing:
            found.update(self.compile_many(missing))
        self.cache.store_compiled(
            {
                **cached,
                **{uid: {"parse": parse_key or "", "code": codes[uid], "sql": found[uid]} for uid in models},
            }
        )
        return found

    def compile_many(self, names: list[str], run_vars: dict[str, str] | None = None) -> dict[str, str]:
        """Compiled SQL of the named models, by unique id (nothing is built)."""
        manifest = self.parse(run_vars) if run_vars else None  # a run's compile shares its build's parse
        result = self._invoke(["compile", "--select", *names, "--vars", json.dumps(run_vars or {})], manifest)
        if not result.success:
            raise BuildError(f"dbt compile failed: {result.exception}")
        return {r.node.unique_id: r.node.compiled_code for r in result.result.results}

    def target_info(self) -> TargetInfo:
        """The profile's target exactly as dbt renders it (env_var() included): from the parse cache when
        profiles.yml, dbt_project.yml, the variables they read and dbt are unchanged, else read by dbt."""
        if self._target_info is None:
            self._target_info = self._cached_target() or self._read_target()
        return self._target_info

    def _cached_target(self) -> TargetInfo | None:
        cached = self.cache.target_entry()
        try:
            credentials = RunnerCredentials(
                str(cached["path"]),  # type: ignore[index]
                dict(cached["settings"]),  # type: ignore[index]
                dict(cached.get("connection") or {}),  # type: ignore[union-attr]
            )
            return TargetInfo(str(cached["adapter_type"]), str(cached["name"]), credentials)  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None

    def _read_target(self) -> TargetInfo:
        from dbt.adapters.factory import load_plugin
        from dbt.cli.flags import Flags
        from dbt.cli.main import cli
        from dbt.config.profile import Profile, read_profile
        from dbt.config.project import load_raw_project
        from dbt.config.renderer import ProfileRenderer
        from dbt.flags import set_flags
        from dbt_common.context import set_invocation_context

        set_invocation_context(os.environ)
        set_flags(Flags(cli.make_context(cli.name, ["debug"])))
        profile_name: str = load_raw_project(str(self.project_dir)).get("profile") or ""
        raw_profiles = read_profile(str(self.profiles_dir))
        with contextlib.chdir(self.project_dir):
            profile = Profile.from_raw_profiles(
                raw_profiles, profile_name, renderer=ProfileRenderer({}), target_override=self.target
            )
        load_plugin(profile.credentials.type)
        credentials = profile.credentials
        settings = getattr(credentials, "settings", None) or {}
        connection, password = _server_connection(credentials)
        runner = RunnerCredentials(
            str(getattr(credentials, "path", "") or ""),
            {key: value for key, value in settings.items() if key in RESOURCE_SETTINGS},
            connection,
            password,
        )
        info = TargetInfo(credentials.type, profile.target_name, runner)
        parameters = connection.get("parameters") or {}
        secret = any(word in name.lower() for name in parameters for word in _SECRET_WORDS)
        if not password and not secret:  # a password of the profile's own is never written to the cache
            cached = {key: value for key, value in asdict(runner).items() if key != "password"}
            self.cache.store_target({"adapter_type": info.adapter_type, "name": info.name, **cached})
        return info


# A Spark parameter whose name says it holds a secret keeps the target out of the parse cache.
_SECRET_WORDS = ("secret", "password", "token", "credential", "key")


def _server_connection(credentials: Any) -> tuple[dict[str, Any], str]:
    """A database server's address from dbt's credentials (host, port, user, dbname, sslmode), and the
    password when it is not the PGPASSWORD libpq reads by itself (else ''). For Spark: the method and
    the `server_side_parameters` the session is built with."""
    if credentials.type == "spark":
        method = getattr(credentials.method, "value", credentials.method)
        parameters = {str(k): str(v) for k, v in (credentials.server_side_parameters or {}).items()}
        return {"method": str(method), "parameters": parameters}, ""
    if credentials.type != "postgres":
        return {}, ""
    connection = {
        "host": credentials.host,
        "port": int(credentials.port),
        "user": credentials.user,
        "dbname": credentials.database,
        "sslmode": str(getattr(credentials, "sslmode", "") or ""),
    }
    password = str(getattr(credentials, "password", "") or "")
    return connection, "" if password == os.environ.get("PGPASSWORD", "") else password


def release_connections() -> None:
    """dbt-duckdb keeps the database open after invoke(); close it so the runner can open the file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    DuckDBConnectionManager.close_all_connections()
    gc.collect()


def _digest(fingerprint: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
