{% macro round_to(expression, places) -%}
    {#-
        round(expression, places) on every adapter: PostgreSQL rounds to a number of places only a
        numeric (not a double precision, which a brand's amounts may be), so it casts first.
    -#}
    {{ return(adapter.dispatch('round_to')(expression, places)) }}
{%- endmacro %}

{% macro default__round_to(expression, places) -%}
    round({{ expression }}, {{ places }})
{%- endmacro %}

{% macro postgres__round_to(expression, places) -%}
    round(cast({{ expression }} as numeric), {{ places }})
{%- endmacro %}
