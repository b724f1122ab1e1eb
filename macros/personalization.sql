{% macro greeting(language, first_name, last_name) -%}
    {#- A salutation in the profile's language; falls back to English. Japanese uses family name + 様. -#}
    case {{ language }}
        when 'fr' then coalesce({{ dbt.concat(["'Bonjour '", first_name]) }}, 'Bonjour')
        when 'de' then coalesce({{ dbt.concat(["'Hallo '", first_name]) }}, 'Hallo')
        when 'es' then coalesce({{ dbt.concat(["'Hola '", first_name]) }}, 'Hola')
        when 'pt' then coalesce({{ dbt.concat(["'Olá '", first_name]) }}, 'Olá')
        when 'ja' then coalesce({{ dbt.concat([last_name, "' 様'"]) }}, 'お客様')
        else coalesce({{ dbt.concat(["'Dear '", first_name]) }}, 'Dear customer')
    end
{%- endmacro %}

{% macro tier_rank(tier) -%}
    {#- Loyalty tiers in ascending order, so "eligible from tier X upward" is a comparison. -#}
    case {{ tier }}
        when 'bronze' then 1
        when 'silver' then 2
        when 'gold' then 3
        when 'platinum' then 4
    end
{%- endmacro %}
