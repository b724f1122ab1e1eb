{% macro generate_schema_name(custom_schema_name, node) -%}
    {#-
        dbt's default schema, except for a test-profile proof (var directmail_test_profiles), which is
        built in <schema>_test_profiles so that it never replaces the tables real runs read.
    -#}
    {%- set schema_name = default__generate_schema_name(custom_schema_name, node) | trim -%}
    {%- if var('directmail_test_profiles', false) -%}
        {{ schema_name }}_test_profiles
    {%- else -%}
        {{ schema_name }}
    {%- endif -%}
{%- endmacro %}
