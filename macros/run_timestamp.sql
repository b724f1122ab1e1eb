{% macro run_timestamp() -%}
    {#-
        The campaign run's time (UTC), passed by the runner as the `run_time` var, so that a re-run of
        the same slot selects the same audience. Outside a run (plain `dbt build`) it is the current time.
    -#}
    {%- set run_time = var('run_time', none) -%}
    {%- if run_time -%}
        {{ dbt.cast("'" ~ run_time ~ "'", dbt.type_timestamp()) }}
    {%- else -%}
        {{ dbt.cast(dbt.current_timestamp(), dbt.type_timestamp()) }}
    {%- endif -%}
{%- endmacro %}
