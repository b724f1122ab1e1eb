{% test expression_is_true(model, expression) %}
    {#- Rows for which `expression` does not hold (dbt_utils is not available here). -#}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
