{% macro address_key(address_line_1, address_line_2, postal_code, city, region, country_code) -%}
    {#-
        The key of an address exactly as captured: the same six raw fields give the same key, any change
        gives a new one, so address validation (direct_mail.address_validations) runs once per distinct
        address. The md5 of the fields joined by '|' (a missing field as ''), the same on every adapter.
    -#}
    {%- set fields = [] -%}
    {%- for field in [address_line_1, address_line_2, postal_code, city, region, country_code] -%}
        {%- if not loop.first %}{% do fields.append("'|'") %}{% endif -%}
        {%- do fields.append("coalesce(" ~ field ~ ", '')") -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}
