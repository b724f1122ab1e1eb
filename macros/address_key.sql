{% macro address_key(address_line_1, address_line_2, postal_code, city, region, country_code) -%}
    {#-
        The key of an address exactly as captured: the same six raw fields give the same key, any change
        gives a new one, so address validation (direct_mail.address_validations) runs once per distinct address.
    -#}
    md5(concat_ws(
        '|',
        coalesce({{ address_line_1 }}, ''),
        coalesce({{ address_line_2 }}, ''),
        coalesce({{ postal_code }}, ''),
        coalesce({{ city }}, ''),
        coalesce({{ region }}, ''),
        coalesce({{ country_code }}, '')
    ))
{%- endmacro %}
