{% macro crm_source(table_name) -%}
    {#-
        The CRM table, or its test-profile seed (test_<table>) when the runner renders a proof
        (`directmail preview CAMPAIGN --test-profiles` sets the var directmail_test_profiles).
    -#}
    {%- if var('directmail_test_profiles', false) -%}
        {{ ref('test_' ~ table_name) }}
    {%- else -%}
        {{ source('crm', table_name) }}
    {%- endif -%}
{%- endmacro %}
