{#-
    Every profile with its address's validation result and normalized form: the runner's addresses
    source (invalid addresses are excluded with their error codes; household_key groups one delivery
    point), and the normalized columns a campaign prints.
-#}
{#- A table: the runner joins it on every run, so the key hashing and the join are paid once per build. -#}
{{ config(materialized='table') }}

with

profiles as (

    select * from {{ ref('stg_crm__profiles') }}

),

validated as (

    select * from {{ ref('stg_direct_mail__address_validations') }}

),

keyed as (

    select
        profile_id,
        {{ address_key('address_line_1', 'address_line_2', 'postal_code', 'city', 'region', 'country_code') }}
            as address_key

    from profiles

),

addressed as (

    select
        keyed.profile_id,
        keyed.address_key,
        coalesce(validated.is_valid_address, false) as is_valid_address,
        case
            when validated.address_key is null then 'address:not_validated'
            else validated.address_errors
        end as address_errors,
        validated.normalized_address_line_1,
        validated.normalized_address_line_2,
        validated.normalized_postal_code,
        validated.normalized_city,
        validated.normalized_region,
        validated.normalized_country_code,
        validated.household_key

    from keyed
    left join validated
        on keyed.address_key = validated.address_key

)

select * from addressed
