"""directmail: warehouse-native direct mail. dbt models in, mail-house extract files out.

The library never imports Prefect; `flows/` wraps it for scheduling and the UI.
"""

__version__ = "0.1.0"
