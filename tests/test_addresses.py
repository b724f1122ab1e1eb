"""Address validation on real address shapes, one valid and at least one invalid case per country.

The cases follow each country's postal rules: FR/DE/ES/IT/US five-digit codes (ES, IT and US checked
against the province or state), PT NNNN-NNN, NL NNNN AA, GB and IE (Eircode) alphanumeric codes, CA
A1A 1A1 by province, BR NNNNN-NNN with a required state, JP 〒NNN-NNNN by prefecture, CN six digits with a
required province, AU four digits by state.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from directmail.addresses import INPUT_COLUMNS, OUTPUT_SCHEMA, validate, validate_batches

# (country, line 1, line 2, postal code, city, region) → expected normalized (postal code, city, region)
VALID = [
    ("FR", "12 rue de la République", "Bâtiment B", "69002", "Lyon", "", ("69002", "LYON", "")),
    ("DE", "Unter den Linden 77", "", "10117", "Berlin", "", ("10117", "BERLIN", "")),
    ("ES", "Calle Mayor, 1", "3º izquierda", "28013", "Madrid", "Madrid", ("28013", "MADRID", "M")),
    ("PT", "Rua Augusta 100", "", "1100-053", "Lisboa", "", ("1100-053", "LISBOA", "")),
    ("IT", "Via del Corso 1", "", "00186", "Roma", "Roma", ("00186", "ROMA", "RM")),
    ("NL", "Dam 1", "", "1012 JS", "Amsterdam", "", ("1012 JS", "AMSTERDAM", "")),
    ("GB", "10 Downing Street", "", "sw1a 2aa", "London", "", ("SW1A 2AA", "LONDON", "")),
    (
        "IE",
        "1 Grafton Street",
        "",
        "D02 XY45",
        "Dublin 2",
        "Co. Dublin",
        ("D02 XY45", "DUBLIN 2", "Co. Dublin"),
    ),
    ("US", "350 Fifth Avenue", "Suite 200", "10118", "New York", "New York", ("10118", "NEW YORK", "NY")),
    ("CA", "301 Front St W", "", "M5V 2T6", "Toronto", "Ontario", ("M5V 2T6", "TORONTO", "ON")),
    (
        "BR",
        "Avenida Paulista, 1578",
        "Bela Vista",
        "01310-200",
        "São Paulo",
        "SP",
        ("01310-200", "São Paulo", "SP"),
    ),
    ("JP", "神南1丁目19-11", "", "150-0041", "渋谷区", "東京都", ("150-0041", "渋谷区", "東京都")),
    ("CN", "南京东路100号", "", "200001", "黄浦区", "上海市", ("200001", "黄浦区", "上海市")),
    ("AU", "1 Macquarie St", "", "2000", "Sydney", "NSW", ("2000", "SYDNEY", "NSW")),
]

# (country, line 1, postal code, city, region) → expected errors
INVALID = [
    ("FR", "12 rue de la République", "6900", "Lyon", "", "postal_code:invalid"),  # four digits
    ("FR", "12 rue de la République", "69002", "", "", "city:required"),
    ("DE", "Unter den Linden 77", "1011", "Berlin", "", "postal_code:invalid"),
    ("ES", "Calle Mayor, 1", "28013", "Madrid", "Barcelona", "postal_code:invalid"),  # 28 is Madrid, not 08
    ("ES", "Calle Mayor, 1", "28013", "Madrid", "", "region:required"),
    ("PT", "Rua Augusta 100", "1100053", "Lisboa", "", "postal_code:invalid"),  # needs NNNN-NNN
    ("IT", "Via del Corso 1", "00186", "Roma", "", "region:required"),  # the province is required
    ("IT", "Via del Corso 1", "20121", "Roma", "RM", "postal_code:invalid"),  # 20xxx is Milano
    ("NL", "Dam 1", "1012", "Amsterdam", "", "postal_code:invalid"),  # letters missing
    ("GB", "10 Downing Street", "12345", "London", "", "postal_code:invalid"),
    ("GB", "", "SW1A 2AA", "London", "", "address_line_1:required"),
    ("IE", "1 Grafton Street", "D02", "Dublin 2", "Co. Dublin", "postal_code:invalid"),  # half an Eircode
    ("US", "350 Fifth Avenue", "10118", "New York", "CA", "postal_code:invalid"),  # a New York ZIP in CA
    ("US", "350 Fifth Avenue", "10118", "New York", "", "region:required"),
    ("US", "350 Fifth Avenue", "10118", "New York", "Narnia", "region:invalid"),
    ("CA", "301 Front St W", "M5V 2T6", "Toronto", "QC", "postal_code:invalid"),  # M is Ontario
    ("CA", "301 Front St W", "12345", "Toronto", "ON", "postal_code:invalid"),
    ("BR", "Avenida Paulista, 1578", "01310-200", "São Paulo", "", "region:required"),
    ("BR", "Avenida Paulista, 1578", "0131", "São Paulo", "SP", "postal_code:invalid"),
    ("JP", "神南1丁目19-11", "150-0041", "渋谷区", "大阪府", "postal_code:invalid"),  # a Tokyo code in Osaka
    ("CN", "南京东路100号", "200001", "黄浦区", "", "region:required"),
    ("CN", "南京东路100号", "20001", "黄浦区", "上海市", "postal_code:invalid"),
    ("AU", "1 Macquarie St", "2000", "Sydney", "VIC", "postal_code:invalid"),  # 2xxx is NSW
    ("AU", "1 Macquarie St", "2000", "", "NSW", "city:required"),
    ("XX", "1 Main Street", "2000", "Sydney", "", "country_code:invalid"),
    ("", "1 Main Street", "2000", "Sydney", "", "country_code:required"),
]

COUNTRIES = ["FR", "DE", "ES", "PT", "IT", "NL", "GB", "IE", "US", "CA", "BR", "JP", "CN", "AU"]


def test_every_country_has_valid_and_invalid_cases():
    assert {c[0] for c in VALID} >= set(COUNTRIES)
    assert {c[0] for c in INVALID} >= set(COUNTRIES)


@pytest.mark.parametrize("case", VALID, ids=[f"{c[0]}-{c[3]}" for c in VALID])
def test_valid_addresses_are_normalized(case):
    country, line_1, line_2, postal_code, city, region, expected = case
    checked = validate(line_1, line_2, postal_code, city, region, country)
    assert checked.errors == ""
    assert checked.is_valid
    assert (checked.postal_code, checked.city, checked.region) == expected
    assert checked.country_code == country
    assert checked.household_key is not None


@pytest.mark.parametrize("case", INVALID, ids=[f"{c[0] or 'none'}-{c[5]}" for c in INVALID])
def test_invalid_addresses_name_the_field_and_code(case):
    country, line_1, postal_code, city, region, expected = case
    checked = validate(line_1, None, postal_code, city, region, country)
    assert not checked.is_valid
    assert checked.errors == expected
    assert checked.household_key is None


def test_several_failures_are_all_kept_in_field_order():
    checked = validate("", None, "1234", "", "", "US")
    assert checked.errors == "address_line_1:required;city:required;postal_code:invalid;region:required"


def test_canadian_street_lines_are_upper_cased_as_canada_post_prints_them():
    checked = validate("301 Front St W", "unit 5", "m5v 2t6", "Toronto", "ON", "ca")
    assert (checked.line_1, checked.line_2, checked.postal_code, checked.country_code) == (
        "301 FRONT ST W",
        "UNIT 5",
        "M5V 2T6",
        "CA",
    )


def test_one_delivery_point_gives_one_household_key_whatever_its_spelling():
    first = validate("12  rue de la République", None, "69002", "Lyon", None, "FR")
    second = validate("12 RUE DE LA RÉPUBLIQUE", "", "69002", "LYON", "", "fr")
    elsewhere = validate("14 rue de la République", None, "69002", "Lyon", None, "FR")
    assert first.household_key == second.household_key != elsewhere.household_key


def test_batches_stream_in_order_with_the_output_schema():
    rows = [
        {
            "address_key": "a",
            "address_line_1": "Dam 1",
            "address_line_2": None,
            "postal_code": "1012 JS",
            "city": "Amsterdam",
            "region": None,
            "country_code": "NL",
        },
        {
            "address_key": "b",
            "address_line_1": "Dam 1",
            "address_line_2": None,
            "postal_code": "1012",
            "city": "Amsterdam",
            "region": None,
            "country_code": "NL",
        },
    ]
    table = pa.Table.from_pylist(
        rows, schema=pa.schema([("address_key", pa.string())] + [(c, pa.string()) for c in INPUT_COLUMNS])
    )
    result = validate_batches(table.to_batches(max_chunksize=1)).read_all()
    assert result.schema == OUTPUT_SCHEMA
    assert result.column("address_key").to_pylist() == ["a", "b"]
    assert result.column("is_valid_address").to_pylist() == [True, False]
    assert result.column("address_errors").to_pylist() == [None, "postal_code:invalid"]
    assert result.column("normalized_city").to_pylist() == ["AMSTERDAM", "Amsterdam"]


def test_the_extract_contract_also_needs_a_city_and_the_postal_code_a_country_has():
    japan = validate("神南1丁目19-11", None, "150-0041", "", "東京都", "JP")
    ireland = validate("1 Grafton Street", None, "", "Dublin 2", "Co. Dublin", "IE")
    assert (japan.errors, ireland.errors) == ("city:required", "postal_code:required")
