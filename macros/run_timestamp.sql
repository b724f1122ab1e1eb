{% macro run_timestamp() -%}
    {#-
        The campaign run's time (UTC), passed by the runner as the `run_time` var, so that a re-run of
        the same slot selects the same audience. Outside a run (plain `dbt build`) it is the current time.
    -#}
    {%- set run_time = var('run_time', none) -%}
    {%- if run_time -%}
        cast('{{ run_time }}' as timestamp)
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as timestamp)
    {%- endif -%}
{%- endmacro %}
