"""The exclusion reasons, apart from the extract's machinery: the report orders by them without Arrow."""

# In the order they are applied: a profile is counted once, under the first reason that applies.
# No person twice: households and duplicates are resolved before the frequency cap and the holdout, so a
# capped or held-out person's housemate or duplicate never goes out in their place.
REASONS = (
    "no_postal_consent",
    "suppressed",
    "invalid_address",
    "household_duplicate",
    "duplicate",
    "already_sent",
    "frequency_cap",
    "holdout",
)
