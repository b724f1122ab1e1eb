"""Resolve `${prefect:block-name}` references in direct_mail.yml from Prefect Secret blocks.

Importing this module registers the resolver with the library (which never imports Prefect itself).
Create a block with `prefect block create secret` in the UI, or in Python:
`Secret(value="...").save("mailhouse-sftp-password")`.
"""

from __future__ import annotations

import json

from prefect.blocks.system import Secret

from directmail.secrets import PREFECT, register_resolver


def read_secret_block(name: str) -> str:
    # Prefect's async_dispatch takes `_sync` (load synchronously, even from an async flow), but the
    # signature it gives load() leaves it out
    block = Secret.load(name, _sync=True)  # type: ignore[call-arg]
    assert isinstance(block, Secret)  # _sync: the block itself, not a coroutine
    value = block.value.get_secret_value()  # not .get(): it JSON-decodes "1234"
    return value if isinstance(value, str) else json.dumps(value)


register_resolver(PREFECT, read_secret_block)
